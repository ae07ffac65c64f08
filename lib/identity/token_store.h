#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "identity/posix_file.h"
#include "identity/token_set.h"

namespace g2m {

// One token file per account under storage.dir: <dir>/<account>.json (0600, dir 0700, both
// owned by the agent's user), written atomically (temp file, fsync, rename, fsync of the
// directory) under an exclusive flock on <dir>/<account>.lock, so the agent and `graph2mqtt
// login` never interleave writes. The lock is only ever tried, never waited for: a lock held by
// the other process makes save()/remove() return `busy` at once, and the caller tries again
// later (docs/mqtt-api.md "Tokens": storage_error after 5 s). The format lives in
// token_file_codec.h, the system calls in posix_file.h.
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
    // The lock is held by another process (`graph2mqtt login`): nothing was written or removed;
    // try again shortly. ok is false too, so a caller that ignores `busy` treats it as a failure.
    bool busy = false;
  };

  // `writer` is the port every write goes through (tests pass one that fails on demand); it
  // must outlive the store.
  explicit TokenStore(std::filesystem::path dir,
                      posix::FileWriter& writer = posix::system_writer());

  // Creates the folder 0700 if missing, tightens it to 0700 if wider (returns a warning then).
  // Throws std::runtime_error when it cannot be created, or when it is owned by another user.
  std::optional<std::string> prepare();

  // A file owned by another user, or open to group or others, is `corrupt` and never read: it
  // may have been planted.
  LoadResult load(const std::string& account, const TokenBinding& binding) const;
  WriteResult save(const std::string& account, const TokenBinding& binding, const TokenSet& tokens);
  WriteResult remove(const std::string& account);
  // save(), retried while the lock is busy for up to `wait` (sleeping between tries): for the
  // `graph2mqtt login` command, which may block; never for the agent's event loop.
  WriteResult save_waiting(const std::string& account, const TokenBinding& binding,
                           const TokenSet& tokens, std::chrono::milliseconds wait);
  bool exists(const std::string& account) const;
  // Modification time of the token file (to notice a file written by `graph2mqtt login`).
  std::optional<std::filesystem::file_time_type> modified(const std::string& account) const;

  // The token file `logout` could not delete is never loaded again by this run of the agent:
  // not by the token-file watch, nor by the account a reload restarts (docs/mqtt-api.md
  // "Tokens"). A file written later (by `graph2mqtt login`) takes its place and is loaded.
  void refuse_current_file(const std::string& account);
  bool refused(const std::string& account) const;

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

 private:
  std::filesystem::path dir_;
  posix::FileWriter* writer_;
  std::map<std::string, std::filesystem::file_time_type> refused_;  // account -> that file's mtime
};

}  // namespace g2m
