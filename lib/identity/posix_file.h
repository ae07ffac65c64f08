#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

// The few POSIX file operations the token store needs, each with its EINTR loop and its
// durability rule in one place: a file descriptor owner, an atomic replace (temp file, fsync,
// rename, fsync of the folder), a non-blocking exclusive lock, a bounded read.
namespace g2m::posix {

std::string errno_text(int err);

// Owns one file descriptor; closing it also drops any flock taken through it.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports the error: on NFS and some FUSE file systems a write error only
  // shows up at close.
  int close();

 private:
  int fd_;
};

// open(2), retried on EINTR.
int open_retrying(const char* path, int flags, mode_t mode = 0);

// The narrow port writes go through, one virtual per system call, so a test can make any one of
// them fail (disk full, a failed rename) without a test hook in production code. The defaults
// are the system calls; each returns as they do (-1 or false with errno set).
class FileWriter {
 public:
  virtual ~FileWriter() = default;
  // open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode)
  virtual int create_exclusive(const char* path, mode_t mode);
  virtual int fchmod(int fd, mode_t mode);
  // Writes every byte (a zero-byte write counts as ENOSPC).
  virtual bool write_all(int fd, std::string_view bytes);
  virtual int fsync(int fd);
  virtual int close(Fd& fd);
  virtual int rename(const char* from, const char* to);
  virtual int unlink(const char* path);
  // fsync of a folder (EINVAL, a file system that cannot sync folders, counts as success).
  virtual int sync_dir(const char* dir);
};

// The process's real writer.
FileWriter& system_writer();

// Replaces `target` with `bytes` atomically: `temp` (same folder) created 0600 with O_EXCL,
// written, fsynced, closed, renamed over `target`, then the folder fsynced. Any failure before
// the rename removes `temp` and leaves `target` as it was. Returns "" or the failure as
// "<step>: <strerror>" ("cannot create /x/.a.tmp-1: File exists", "No space left on device").
struct ReplaceError {
  enum class Step { none, create, write, rename, sync_dir } step = Step::none;
  std::string message;
  explicit operator bool() const { return step != Step::none; }
};
ReplaceError replace_file(FileWriter& writer, const std::filesystem::path& target,
                          const std::filesystem::path& temp, std::string_view bytes);

// An exclusive flock on a lock file (created 0600; O_NOFOLLOW: a symlink planted in its place
// is refused, not followed; O_CLOEXEC). Never blocks: a lock held by another process is `busy`.
struct Lock {
  enum class Status { locked, busy, error } status = Status::error;
  Fd fd;
  std::string error;  // for busy and error
};
Lock try_lock(const std::filesystem::path& lock_path);

// Reads a whole regular file of at most `limit` bytes into `out` (plus a NUL after the last
// byte: out.size() is bytes read + 1), growing the buffer by copying so no token bytes are left
// in freed memory unwiped. O_NONBLOCK (a FIFO in place of the file must not hang the loop),
// O_NOFOLLOW is not used: a symlink is judged by what it points to (owner and mode).
struct ReadResult {
  enum class Status {
    ok,
    missing,
    not_regular,
    is_directory,
    too_large,
    error
  } status = Status::error;
  int err = 0;           // errno for error
  uid_t owner = 0;       // of the file read (fstat of the open descriptor)
  mode_t mode = 0;       // permission bits of the file read
  std::size_t size = 0;  // bytes read
};
ReadResult read_file(const std::filesystem::path& path, std::size_t limit, std::string& out);

}  // namespace g2m::posix
