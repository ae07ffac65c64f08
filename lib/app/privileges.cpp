#include "app/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace g2m {

namespace {

// A word as a POSIX shell reads it back: bare when it is safe, else in single quotes.
std::string shell_word(const std::string& word) {
  const bool safe = !word.empty() && word.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_-./=:@%+,") == std::string::npos;
  if (safe) return word;
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string sudo_command(const std::string& user, const std::vector<std::string>& command_line) {
  std::string command = "sudo -u " + shell_word(user);
  for (const auto& word : command_line) command += " " + shell_word(word);
  return command;
}

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

OwnerSwitch become_storage_owner(const std::filesystem::path& storage_dir,
                                 const std::vector<std::string>& command_line) {
  OwnerSwitch result;
  if (::geteuid() != 0) return result;

  struct stat st {};
  if (::stat(storage_dir.c_str(), &st) != 0) {
    result.refusal = "storage.dir " + storage_dir.string() + ": " + errno_text() +
                     "; run as root, this command would create it owned by root, where the "
                     "service cannot read it. Create it for the service's user (the package "
                     "makes /var/lib/graph2mqtt for the user graph2mqtt), then run:\n  " +
                     sudo_command("graph2mqtt", command_line);
    return result;
  }
  if (st.st_uid == 0) return result;  // root's folder: root's files are what the service reads

  errno = 0;
  const passwd* pw = ::getpwuid(st.st_uid);
  if (pw == nullptr) {
    result.refusal = "storage.dir " + storage_dir.string() + " belongs to uid " +
                     std::to_string(st.st_uid) +
                     ", which has no user entry; run this command as that user:\n  " +
                     sudo_command("#" + std::to_string(st.st_uid), command_line);
    return result;
  }
  const std::string user = pw->pw_name;
  const auto refuse = [&](const char* step) {
    result.refusal = "cannot switch to " + user + ", the owner of storage.dir " +
                     storage_dir.string() + " (" + step + ": " + errno_text() +
                     "); run this command as that user, so that the service can read the "
                     "files it writes:\n  " +
                     sudo_command(user, command_line);
    return result;
  };
  // Groups first: once the uid is no longer 0, they cannot be changed.
  if (::initgroups(user.c_str(), st.st_gid) != 0) return refuse("initgroups");
  if (::setgid(st.st_gid) != 0) return refuse("setgid");
  if (::setuid(st.st_uid) != 0) return refuse("setuid");
  if (::setuid(0) == 0 || ::geteuid() == 0 || ::getegid() != st.st_gid) {
    return refuse("root could be regained");
  }
  result.switched = true;
  result.user = user;
  return result;
}

}  // namespace g2m
