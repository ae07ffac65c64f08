#include "identity/posix_file.h"

#include <fcntl.h>
#include <string.h>  // explicit_bzero
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace g2m::posix {

std::string errno_text(int err) {
  return std::strerror(err);
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::close() {
  const int fd = std::exchange(fd_, -1);
  return fd >= 0 ? ::close(fd) : 0;
}

int open_retrying(const char* path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

int FileWriter::create_exclusive(const char* path, mode_t mode) {
  return open_retrying(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
}

int FileWriter::fchmod(int fd, mode_t mode) {
  return ::fchmod(fd, mode);
}

bool FileWriter::write_all(int fd, std::string_view bytes) {
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

int FileWriter::fsync(int fd) {
  return ::fsync(fd);
}

int FileWriter::close(Fd& fd) {
  return fd.close();
}

int FileWriter::rename(const char* from, const char* to) {
  return ::rename(from, to);
}

int FileWriter::unlink(const char* path) {
  return ::unlink(path);
}

int FileWriter::sync_dir(const char* dir) {
  Fd fd(open_retrying(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return -1;
  // EINVAL: the file system cannot sync directories (some FUSE mounts); nothing more to do.
  if (::fsync(fd.get()) < 0 && errno != EINVAL) return -1;
  return 0;
}

FileWriter& system_writer() {
  static FileWriter writer;
  return writer;
}

ReplaceError replace_file(FileWriter& writer, const std::filesystem::path& target,
                          const std::filesystem::path& temp, std::string_view bytes) {
  using Step = ReplaceError::Step;
  auto fail = [&](Step step, std::string message) {
    writer.unlink(temp.c_str());
    return ReplaceError{step, std::move(message)};
  };
  Fd fd(writer.create_exclusive(temp.c_str(), 0600));
  if (!fd.valid()) {
    // Not via fail(): with EEXIST the file is not ours to remove.
    return {Step::create, "cannot create " + temp.string() + ": " + errno_text(errno)};
  }
  // The umask may have cleared bits of 0600; the owner must be able to read the file back.
  if (writer.fchmod(fd.get(), 0600) < 0) return fail(Step::write, errno_text(errno));
  if (!writer.write_all(fd.get(), bytes) || writer.fsync(fd.get()) < 0) {
    const int err = errno;
    return fail(Step::write, errno_text(err));
  }
  if (writer.close(fd) < 0) return fail(Step::write, errno_text(errno));
  if (writer.rename(temp.c_str(), target.c_str()) < 0) {
    const int err = errno;
    return fail(Step::rename, errno_text(err));
  }
  // The new file is in place; a failed folder sync only means it may not survive a power cut.
  const std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
  if (writer.sync_dir(dir.c_str()) < 0) {
    return {Step::sync_dir,
            "cannot sync the storage folder " + dir.string() + ": " + errno_text(errno)};
  }
  return {};
}

Lock try_lock(const std::filesystem::path& lock_path) {
  Lock lock;
  lock.fd = Fd(open_retrying(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock.fd.valid()) {
    const int err = errno;
    lock.error = "cannot open the lock file " + lock_path.string() + ": " +
                 (err == ELOOP ? std::string("it is a symbolic link") : errno_text(err));
    return lock;
  }
  int rc;
  do {
    rc = ::flock(lock.fd.get(), LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    const int err = errno;
    lock.fd.close();
    if (err == EWOULDBLOCK) {
      lock.status = Lock::Status::busy;
      lock.error = "the lock file " + lock_path.string() +
                   " is held by another process (the agent or `graph2mqtt login`)";
    } else {
      lock.error = "cannot lock the lock file " + lock_path.string() + ": " + errno_text(err);
    }
    return lock;
  }
  lock.status = Lock::Status::locked;
  return lock;
}

ReadResult read_file(const std::filesystem::path& path, std::size_t limit, std::string& out) {
  ReadResult result;
  auto wipe = [](std::string& s) {
    if (!s.empty()) explicit_bzero(s.data(), s.size());
    s.clear();
  };
  auto error = [&](int err) {
    wipe(out);
    result.status = ReadResult::Status::error;
    result.err = err;
    return result;
  };
  Fd fd(open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      result.status = ReadResult::Status::missing;
      return result;
    }
    return error(errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return error(errno);
  result.owner = st.st_uid;
  result.mode = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    result.status = ReadResult::Status::is_directory;
    return result;
  }
  if (!S_ISREG(st.st_mode)) {
    result.status = ReadResult::Status::not_regular;
    return result;
  }
  if (static_cast<std::uintmax_t>(st.st_size) > limit) {
    result.status = ReadResult::Status::too_large;
    return result;
  }
  // Sized from fstat plus one byte, not to the limit: a token file is a few KiB, and a 1 MiB
  // zero-filled buffer per file cost ~0.1 ms and 256 page faults, 1,000 times at start-up.
  // The file may have grown since fstat: then the buffer grows, up to one byte past the limit.
  wipe(out);
  out.resize(static_cast<size_t>(st.st_size) + 1);
  size_t used = 0;
  while (true) {
    if (used == out.size()) {
      if (used > limit) break;
      // Grown by copying, so no reallocation leaves token bytes in freed memory unwiped.
      std::string bigger;
      bigger.resize(std::min(out.size() * 2, limit + 1));
      std::memcpy(bigger.data(), out.data(), used);
      wipe(out);
      out.swap(bigger);
    }
    const ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(errno);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > limit) {
    wipe(out);
    result.status = ReadResult::Status::too_large;
    return result;
  }
  // Room for the NUL the in-place parser needs (the buffer is one byte longer than `used`
  // whenever the loop ended on n == 0 before filling it; grow by copying otherwise).
  if (used == out.size()) {
    std::string bigger;
    bigger.resize(used + 1);
    std::memcpy(bigger.data(), out.data(), used);
    wipe(out);
    out.swap(bigger);
  }
  out[used] = '\0';
  out.resize(used + 1);
  result.size = used;
  result.status = ReadResult::Status::ok;
  return result;
}

}  // namespace g2m::posix
