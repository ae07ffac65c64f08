#include "identity/token_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <utility>

#include "identity/token_file_codec.h"

namespace g2m {

namespace {

using posix::errno_text;
using token_file::printable;
using token_file::wipe;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Wipes a buffer that held tokens when it goes out of scope, whichever way.
struct Wiper {
  std::string& s;
  ~Wiper() { wipe(s); }
};

TokenStore::WriteResult failed(std::string message) {
  return {false, std::move(message), false};
}

}  // namespace

TokenStore::TokenStore(std::filesystem::path dir, posix::FileWriter& writer)
    : dir_(std::move(dir)), writer_(&writer) {}

bool TokenStore::valid_account(std::string_view account) {
  if (account.empty() || account.size() > 64) return false;
  for (const char c : account) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void TokenStore::refuse_current_file(const std::string& account) {
  if (auto modified = this->modified(account)) refused_[account] = *modified;
}

bool TokenStore::refused(const std::string& account) const {
  const auto it = refused_.find(account);
  return it != refused_.end() && modified(account) == it->second;
}

std::filesystem::path TokenStore::file_for(const std::string& account) const {
  return dir_ / (account + ".json");
}

std::filesystem::path TokenStore::lock_for(const std::string& account) const {
  return dir_ / (account + ".lock");
}

std::optional<std::string> TokenStore::prepare() {
  const std::string name = dir_.string();
  // mkdir each missing component ourselves with 0700, so no parent we create is ever readable
  // by other users (create_directories would use 0777 minus the umask).
  std::filesystem::path current;
  for (const auto& part : dir_) {
    current /= part;
    if (part.empty() || part == current.root_path()) continue;
    if (::mkdir(current.c_str(), 0700) < 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create the storage folder " + name + ": " +
                               errno_text(errno));
    }
  }
  struct stat st {};
  if (::stat(dir_.c_str(), &st) < 0) {
    throw std::runtime_error("cannot create the storage folder " + name + ": " + errno_text(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw std::runtime_error("the storage folder " + name + " exists but is not a folder");
  }
  // Another user's folder could hold files that user planted, or swap ours for theirs.
  if (st.st_uid != ::geteuid()) {
    throw std::runtime_error("the storage folder " + name + " is owned by uid " +
                             std::to_string(st.st_uid) + ", not by the agent's user (uid " +
                             std::to_string(::geteuid()) + "); chown it to the agent's user");
  }
  const mode_t mode = st.st_mode & 07777;
  if (mode == 0700) return std::nullopt;
  if (::chmod(dir_.c_str(), 0700) < 0) {
    throw std::runtime_error("cannot restrict the storage folder " + name +
                             " to mode 0700: " + errno_text(errno));
  }
  // A folder we just made under an unusual umask lacks owner bits, which is not worth a warning.
  if ((mode & 077) == 0) return std::nullopt;
  return "the storage folder " + name + " was accessible to other users (mode " + octal(mode) +
         "); restricted it to 0700";
}

TokenStore::LoadResult TokenStore::load(const std::string& account,
                                        const TokenBinding& binding) const {
  using Kind = LoadResult::Kind;
  LoadResult result;
  if (!valid_account(account)) {
    result.kind = Kind::unreadable;
    result.message =
        "cannot read tokens: \"" + printable(account) + "\" is not a valid account name";
    return result;
  }
  const std::filesystem::path path = file_for(account);
  const std::string name = path.string();
  auto fail = [&result](Kind kind, std::string message) {
    result.kind = kind;
    result.message = std::move(message);
    return std::move(result);
  };
  auto corrupt = [&](const std::string& what) {
    return fail(Kind::corrupt, "the token file " + name + " is corrupt: " + what);
  };
  auto unreadable = [&](const std::string& what) {
    return fail(Kind::unreadable, "cannot read the token file " + name + ": " + what);
  };
  if (refused(account)) {
    return fail(Kind::unreadable, "the token file " + name +
                                      " could not be deleted at logout and is not loaded again; "
                                      "delete it by hand");
  }

  std::string buffer;
  Wiper wiper{buffer};
  using Status = posix::ReadResult::Status;
  const posix::ReadResult read = posix::read_file(path, max_file_size, buffer);
  switch (read.status) {
    case Status::missing:
      return result;  // none
    case Status::error:
      return unreadable(errno_text(read.err));
    case Status::is_directory:
      return unreadable(errno_text(EISDIR));
    case Status::not_regular:
      return unreadable("it is not a regular file");
    case Status::too_large:
      return corrupt("it is larger than 1 MiB");
    case Status::ok:
      break;
  }
  // Never loaded, whatever it holds: a file we did not write, or one others could have written,
  // may have been planted (docs/mqtt-api.md "Tokens").
  if (read.owner != ::geteuid()) {
    return corrupt("it is owned by uid " + std::to_string(read.owner) +
                   ", not by the agent's user (uid " + std::to_string(::geteuid()) +
                   "); not loaded, it may have been planted");
  }
  if ((read.mode & 077) != 0) {
    return corrupt("it is readable or writable by group or others (mode " + octal(read.mode) +
                   "); not loaded, it may have been planted");
  }

  auto decoded = token_file::decode(buffer.data(), read.size, binding);
  switch (decoded.kind) {
    case token_file::Decoded::Kind::corrupt:
      return corrupt(decoded.reason);
    case token_file::Decoded::Kind::other_binding:
      return fail(Kind::other_binding, "the token file " + name + " " + decoded.reason);
    case token_file::Decoded::Kind::ok:
      break;
  }
  result.kind = Kind::ok;
  result.tokens = std::move(decoded.tokens);
  return result;
}

TokenStore::WriteResult TokenStore::save(const std::string& account, const TokenBinding& binding,
                                         const TokenSet& tokens) {
  if (!valid_account(account)) {
    return failed("cannot write tokens: \"" + printable(account) +
                  "\" is not a valid account name");
  }
  const std::filesystem::path path = file_for(account);
  const std::string name = path.string();
  const std::filesystem::path temp =
      dir_ / ("." + account + ".json.tmp-" + std::to_string(::getpid()));

  posix::Lock lock = posix::try_lock(lock_for(account));
  if (lock.status == posix::Lock::Status::busy) {
    return {false, "cannot write the token file " + name + " yet: " + lock.error, true};
  }
  if (lock.status != posix::Lock::Status::locked) {
    return failed("cannot write the token file " + name + ": " + lock.error);
  }

  // Under the lock a temp file with our pid can only be left over from an earlier process with
  // the same pid (a container's pid 1 after a crash); without this O_EXCL would fail forever.
  writer_->unlink(temp.c_str());

  std::string bytes = token_file::encode(binding, tokens);
  Wiper wiper{bytes};
  const auto error = posix::replace_file(*writer_, path, temp, bytes);
  switch (error.step) {
    case posix::ReplaceError::Step::none:
      return {};
    case posix::ReplaceError::Step::rename:
      return failed("cannot replace the token file " + name + ": " + error.message);
    default:
      // A failed folder sync: the new file is in place but may not survive a power cut, so it
      // is reported and the caller writes again.
      return failed("cannot write the token file " + name + ": " + error.message);
  }
}

TokenStore::WriteResult TokenStore::save_waiting(const std::string& account,
                                                 const TokenBinding& binding,
                                                 const TokenSet& tokens,
                                                 std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    WriteResult result = save(account, binding, tokens);
    if (!result.busy || std::chrono::steady_clock::now() >= deadline) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TokenStore::WriteResult TokenStore::remove(const std::string& account) {
  if (!valid_account(account)) {
    return failed("cannot remove tokens: \"" + printable(account) +
                  "\" is not a valid account name");
  }
  const std::filesystem::path path = file_for(account);
  posix::Lock lock = posix::try_lock(lock_for(account));
  if (lock.status == posix::Lock::Status::busy) {
    return {false, "cannot remove the token file " + path.string() + " yet: " + lock.error, true};
  }
  if (lock.status != posix::Lock::Status::locked) {
    return failed("cannot remove the token file " + path.string() + ": " + lock.error);
  }
  if (writer_->unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return {};
    return failed("cannot remove the token file " + path.string() + ": " + errno_text(errno));
  }
  if (writer_->sync_dir(dir_.c_str()) < 0) {
    return failed("cannot remove the token file " + path.string() +
                  ": cannot sync the storage folder " + dir_.string() + ": " + errno_text(errno));
  }
  return {};
}

bool TokenStore::exists(const std::string& account) const {
  if (!valid_account(account)) return false;
  struct stat st {};
  return ::stat(file_for(account).c_str(), &st) == 0;
}

std::optional<std::filesystem::file_time_type> TokenStore::modified(
    const std::string& account) const {
  if (!valid_account(account)) return std::nullopt;
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(file_for(account), ec);
  if (ec) return std::nullopt;
  return time;
}

}  // namespace g2m
