#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "identity/token_set.h"

namespace g2m {

// One token file per account under storage.dir: <dir>/<account>.json (0600, dir 0700), written
// atomically (temp file, fsync, rename, fsync of the directory) under an exclusive flock on
// <dir>/<account>.lock, so the agent and `graph2mqtt login` never interleave writes.
class TokenStore {
 public:
  struct LoadResult {
    enum class Kind { none, ok, corrupt, unreadable, other_binding } kind = Kind::none;
    std::optional<TokenSet> tokens;  // set when ok
    std::string message;             // why, for corrupt/unreadable/other_binding (never a secret)
  };
  struct WriteResult {
    bool ok = true;
    std::string message;  // why it failed (never a secret)
  };
  // Test seam for disk-full and similar: called before the rename, a non-empty return fails the
  // write with that message (the previous file stays intact).
  using FaultHook = std::function<std::string(const std::string& account)>;

  explicit TokenStore(std::filesystem::path dir);

  // Creates the folder 0700 if missing, tightens it to 0700 if wider (returns a warning then).
  // Throws std::runtime_error when it cannot be created.
  std::optional<std::string> prepare();

  LoadResult load(const std::string& account, const TokenBinding& binding) const;
  WriteResult save(const std::string& account, const TokenBinding& binding, const TokenSet& tokens);
  WriteResult remove(const std::string& account);
  bool exists(const std::string& account) const;
  // Modification time of the token file (to notice a file written by `graph2mqtt login`).
  std::optional<std::filesystem::file_time_type> modified(const std::string& account) const;

  std::filesystem::path file_for(const std::string& account) const;
  // The lock file beside the token file; it is never deleted (deleting a lock file lets two
  // writers lock two different inodes).
  std::filesystem::path lock_for(const std::string& account) const;
  // [A-Za-z0-9_-]{1,64}: config validates this already; the store refuses anything else so a
  // name can never reach outside the folder.
  static bool valid_account(std::string_view account);
  // A token file is a few KiB; anything larger is treated as corrupt without reading it whole.
  static constexpr std::uintmax_t max_file_size = 1024 * 1024;
  const std::filesystem::path& dir() const { return dir_; }
  void set_fault_hook(FaultHook hook) { fault_hook_ = std::move(hook); }

 private:
  std::filesystem::path dir_;
  FaultHook fault_hook_;
};

}  // namespace g2m
