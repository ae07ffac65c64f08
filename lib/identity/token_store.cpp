#include "identity/token_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string.h>  // explicit_bzero
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>

#include "common/time_format.h"

namespace g2m {

namespace {

constexpr int format_version = 1;

std::string errno_text(int err) {
  return std::strerror(err);
}

// Zeroes a buffer that held tokens; explicit_bzero cannot be optimised away like a plain fill.
void wipe(std::string& s) {
  if (!s.empty()) explicit_bzero(s.data(), s.size());
  s.clear();
}

// Owns one file descriptor; closing it also drops any flock taken through it.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports the error: on NFS and some FUSE file systems a write error only
  // shows up at close.
  int close() {
    const int fd = std::exchange(fd_, -1);
    return fd >= 0 ? ::close(fd) : 0;
  }

 private:
  int fd_;
};

int open_retrying(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// A blocking exclusive flock on <dir>/<account>.lock: the agent and `graph2mqtt login` are
// separate processes and must never interleave their writes.
struct Lock {
  Fd fd;
  std::string error;  // empty when locked
};

Lock take_lock(const std::filesystem::path& lock_path) {
  Lock lock;
  lock.fd = Fd(open_retrying(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.fd.valid()) {
    lock.error = "cannot open the lock file " + lock_path.string() + ": " + errno_text(errno);
    return lock;
  }
  int rc;
  do {
    rc = ::flock(lock.fd.get(), LOCK_EX);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    lock.error = "cannot lock the lock file " + lock_path.string() + ": " + errno_text(errno);
  }
  return lock;
}

bool write_all(int fd, const std::string& bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    // A zero-byte write with bytes left would loop forever; treat it as a full disk.
    if (n == 0) {
      errno = ENOSPC;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// Makes a rename or unlink durable: without it a power cut can bring back the old directory
// entry even though the file data was synced.
std::string sync_dir(const std::filesystem::path& dir) {
  Fd fd(open_retrying(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid())
    return "cannot open the storage folder " + dir.string() + ": " + errno_text(errno);
  // EINVAL: the file system cannot sync directories (some FUSE mounts); nothing more to do.
  if (::fsync(fd.get()) < 0 && errno != EINVAL) {
    return "cannot sync the storage folder " + dir.string() + ": " + errno_text(errno);
  }
  return {};
}

// rapidjson output stream appending to a std::string we can wipe afterwards.
struct StringSink {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};

std::string to_json(const TokenBinding& binding, const TokenSet& tokens) {
  std::string out;
  // Reserved up front so the buffer is not reallocated, which would leave copies of the tokens
  // in freed memory that wipe() cannot reach.
  out.reserve(1024 +
              2 * (tokens.access_token.reveal().size() + tokens.refresh_token.reveal().size()));
  StringSink sink{&out};
  rapidjson::PrettyWriter<StringSink> w(sink);
  w.SetIndent(' ', 2);
  auto str = [&w](const std::string& s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("version");
  w.Int(format_version);
  w.Key("binding");
  w.StartObject();
  w.Key("client_id");
  str(binding.client_id);
  w.Key("tenant");
  str(binding.tenant);
  w.Key("authority");
  str(binding.authority);
  w.Key("protocol");
  str(binding.protocol);
  w.EndObject();
  w.Key("access_token");
  str(tokens.access_token.reveal());
  w.Key("refresh_token");
  str(tokens.refresh_token.reveal());
  w.Key("expires_at");
  str(format_utc(tokens.expires_at));
  w.Key("obtained_at");
  str(format_utc(tokens.obtained_at));
  w.Key("scopes");
  w.StartArray();
  for (const auto& scope : tokens.scopes) str(scope);
  w.EndArray();
  w.Key("user");
  if (tokens.user) {
    w.StartObject();
    w.Key("name");
    str(tokens.user->name);
    w.Key("username");
    str(tokens.user->username);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  out.push_back('\n');
  return out;
}

// A value from the file, made safe to put in a log line: printable ASCII only, and short.
std::string printable(std::string_view s) {
  constexpr size_t limit = 100;
  std::string out;
  for (const char c : s.substr(0, limit)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > limit) out += "...";
  return out;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  const auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string> string_member(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* v = member(object, name);
  if (v == nullptr || !v->IsString()) return std::nullopt;
  return std::string(v->GetString(), v->GetStringLength());
}

}  // namespace

TokenStore::TokenStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

bool TokenStore::valid_account(std::string_view account) {
  if (account.empty() || account.size() > 64) return false;
  for (const char c : account) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
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
  const mode_t mode = st.st_mode & 07777;
  if (mode == 0700) return std::nullopt;
  if (::chmod(dir_.c_str(), 0700) < 0) {
    throw std::runtime_error("cannot restrict the storage folder " + name +
                             " to mode 0700: " + errno_text(errno));
  }
  // A folder we just made under an unusual umask lacks owner bits, which is not worth a warning.
  if ((mode & 077) == 0) return std::nullopt;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
  return "the storage folder " + name + " was accessible to other users (mode " + octal +
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
    return result;
  };
  auto corrupt = [&](const std::string& what) {
    return fail(Kind::corrupt, "the token file " + name + " is corrupt: " + what);
  };

  // O_NONBLOCK: a FIFO put in place of the file must not hang the event loop.
  Fd fd(open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT) return result;  // none
    return fail(Kind::unreadable, "cannot read the token file " + name + ": " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) {
    return fail(Kind::unreadable, "cannot read the token file " + name + ": " + errno_text(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return fail(Kind::unreadable, "cannot read the token file " + name + ": " + errno_text(EISDIR));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Kind::unreadable,
                "cannot read the token file " + name + ": it is not a regular file");
  }
  if (static_cast<std::uintmax_t>(st.st_size) > max_file_size) {
    return corrupt("it is larger than 1 MiB");
  }

  // Sized from fstat plus one byte, not to the 1 MiB limit: a token file is a few KiB, and a
  // 1 MiB zero-filled buffer per file cost ~0.1 ms and 256 page faults, 1,000 times at start-up.
  // The file may have grown since fstat: then the buffer grows, up to one byte past the limit.
  std::string buffer;
  buffer.resize(static_cast<size_t>(st.st_size) + 1);
  size_t used = 0;
  while (true) {
    if (used == buffer.size()) {
      if (used > max_file_size) break;
      // Grown by copying, so no reallocation leaves token bytes in freed memory unwiped.
      std::string bigger;
      bigger.resize(std::min(buffer.size() * 2, static_cast<size_t>(max_file_size) + 1));
      std::memcpy(bigger.data(), buffer.data(), used);
      wipe(buffer);
      buffer.swap(bigger);
    }
    const ssize_t n = ::read(fd.get(), buffer.data() + used, buffer.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      wipe(buffer);
      return fail(Kind::unreadable, "cannot read the token file " + name + ": " + errno_text(err));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_file_size) {
    wipe(buffer);
    return corrupt("it is larger than 1 MiB");
  }
  // Parsed in place so the token bytes live only in this buffer (wiped below) and the Secrets.
  buffer[used] = '\0';
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{buffer};

  rapidjson::Document doc;
  doc.ParseInsitu(buffer.data());
  if (doc.HasParseError()) {
    return corrupt(std::string("it is not valid JSON (") +
                   rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                   std::to_string(doc.GetErrorOffset()) + ")");
  }
  if (!doc.IsObject()) return corrupt("it is not a JSON object");

  const rapidjson::Value* version = member(doc, "version");
  if (version == nullptr || !version->IsInt() || version->GetInt() != format_version) {
    return corrupt("version is missing or not 1");
  }
  const rapidjson::Value* stored = member(doc, "binding");
  if (stored == nullptr || !stored->IsObject()) return corrupt("binding is missing");
  TokenBinding file_binding;
  const std::pair<const char*, std::string TokenBinding::*> fields[] = {
      {"client_id", &TokenBinding::client_id},
      {"tenant", &TokenBinding::tenant},
      {"authority", &TokenBinding::authority},
      {"protocol", &TokenBinding::protocol},
  };
  for (const auto& [key, field] : fields) {
    auto value = string_member(*stored, key);
    if (!value) return corrupt(std::string("binding.") + key + " is missing or not a string");
    file_binding.*field = std::move(*value);
  }

  TokenSet tokens;
  auto access = string_member(doc, "access_token");
  if (!access || access->empty()) return corrupt("access_token is missing or empty");
  tokens.access_token = Secret(std::move(*access));
  // An empty refresh token is legitimate (no offline_access granted); a missing one is not.
  auto refresh = string_member(doc, "refresh_token");
  if (!refresh) return corrupt("refresh_token is missing or not a string");
  tokens.refresh_token = Secret(std::move(*refresh));

  const std::pair<const char*, SystemTime TokenSet::*> times[] = {
      {"expires_at", &TokenSet::expires_at},
      {"obtained_at", &TokenSet::obtained_at},
  };
  for (const auto& [key, field] : times) {
    const auto text = string_member(doc, key);
    const auto time = text ? parse_utc(*text) : std::nullopt;
    if (!time) return corrupt(std::string(key) + " is missing or not an ISO 8601 UTC timestamp");
    tokens.*field = *time;
  }

  const rapidjson::Value* scopes = member(doc, "scopes");
  if (scopes == nullptr || !scopes->IsArray()) return corrupt("scopes is missing or not a list");
  for (const auto& scope : scopes->GetArray()) {
    if (!scope.IsString()) return corrupt("scopes contains something other than a string");
    tokens.scopes.emplace_back(scope.GetString(), scope.GetStringLength());
  }

  const rapidjson::Value* user = member(doc, "user");
  if (user == nullptr) return corrupt("user is missing");
  if (!user->IsNull()) {
    const auto user_name = user->IsObject() ? string_member(*user, "name") : std::nullopt;
    const auto username = user->IsObject() ? string_member(*user, "username") : std::nullopt;
    if (!user_name || !username) return corrupt("user is neither null nor {name, username}");
    tokens.user = User{*user_name, *username};
  }

  // Checked after the shape, so a damaged file is reported as corrupt whatever it names.
  for (const auto& [key, field] : fields) {
    if (file_binding.*field != binding.*field) {
      return fail(Kind::other_binding, "the token file " + name + " was issued for another " + key +
                                           " (" + printable(file_binding.*field) +
                                           ", the configuration names " +
                                           printable(binding.*field) + ")");
    }
  }

  result.kind = Kind::ok;
  result.tokens = std::move(tokens);
  return result;
}

TokenStore::WriteResult TokenStore::save(const std::string& account, const TokenBinding& binding,
                                         const TokenSet& tokens) {
  if (!valid_account(account)) {
    return {false,
            "cannot write tokens: \"" + printable(account) + "\" is not a valid account name"};
  }
  const std::filesystem::path path = file_for(account);
  const std::string name = path.string();
  const std::filesystem::path temp =
      dir_ / ("." + account + ".json.tmp-" + std::to_string(::getpid()));

  Lock lock = take_lock(lock_for(account));
  if (!lock.error.empty())
    return {false, "cannot write the token file " + name + ": " + lock.error};

  // Under the lock a temp file with our pid can only be left over from an earlier process with
  // the same pid (a container's pid 1 after a crash); without this O_EXCL would fail forever.
  ::unlink(temp.c_str());

  auto fail = [&temp](std::string message) {
    ::unlink(temp.c_str());
    return WriteResult{false, std::move(message)};
  };

  std::string bytes = to_json(binding, tokens);
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{bytes};

  Fd fd(open_retrying(temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    // Not via fail(): with EEXIST the file is not ours to remove.
    return {false, "cannot write the token file " + name + ": cannot create " + temp.string() +
                       ": " + errno_text(errno)};
  }
  // The umask may have cleared bits of 0600; the owner must be able to read the file back.
  if (::fchmod(fd.get(), 0600) < 0) {
    return fail("cannot write the token file " + name + ": " + errno_text(errno));
  }
  if (!write_all(fd.get(), bytes) || ::fsync(fd.get()) < 0) {
    const int err = errno;
    return fail("cannot write the token file " + name + ": " + errno_text(err));
  }
  if (fd.close() < 0) {
    return fail("cannot write the token file " + name + ": " + errno_text(errno));
  }
  if (fault_hook_) {
    std::string fault = fault_hook_(account);
    if (!fault.empty()) return fail("cannot write the token file " + name + ": " + fault);
  }
  if (::rename(temp.c_str(), path.c_str()) < 0) {
    const int err = errno;
    return fail("cannot replace the token file " + name + ": " + errno_text(err));
  }
  // The new file is in place; a failed directory sync only means it may not survive a power cut,
  // so report it and let the caller write again.
  std::string sync_error = sync_dir(dir_);
  if (!sync_error.empty())
    return {false, "cannot write the token file " + name + ": " + sync_error};
  return {};
}

TokenStore::WriteResult TokenStore::remove(const std::string& account) {
  if (!valid_account(account)) {
    return {false,
            "cannot remove tokens: \"" + printable(account) + "\" is not a valid account name"};
  }
  const std::filesystem::path path = file_for(account);
  Lock lock = take_lock(lock_for(account));
  if (!lock.error.empty()) {
    return {false, "cannot remove the token file " + path.string() + ": " + lock.error};
  }
  if (::unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return {};
    return {false, "cannot remove the token file " + path.string() + ": " + errno_text(errno)};
  }
  std::string sync_error = sync_dir(dir_);
  if (!sync_error.empty()) {
    return {false, "cannot remove the token file " + path.string() + ": " + sync_error};
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
