#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace g2m {

// What become_storage_owner() did.
struct OwnerSwitch {
  bool switched = false;  // the process now runs as `user` (setgid, initgroups, setuid)
  std::string user{};     // the owner's name ("" when not switched)
  std::optional<std::string> refusal{};  // set: do not go on; print it and exit 1
};

// Commands that write the agent's files from a terminal (`graph2mqtt login`) must leave them
// readable by the service. Run as root, this switches the whole process to the owner of
// `storage_dir` (its uid and gid, with that user's supplementary groups) before any file is
// touched, and checks that root cannot be regained. When that is not possible (the folder is
// missing, its owner has no user entry, the switch fails) it refuses, naming the exact command
// to run instead: `sudo -u OWNER ` followed by `command_line` (the program's own arguments).
// Not root, or a folder owned by root: nothing to do.
OwnerSwitch become_storage_owner(const std::filesystem::path& storage_dir,
                                 const std::vector<std::string>& command_line);

}  // namespace g2m
