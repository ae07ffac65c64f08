#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

// Helpers shared by the fuzz targets (header-only: each target is one translation unit).
namespace g2m::fuzz {

// A property every input must keep. Not assert(): it must hold in every build type, and its
// message names the broken promise, which a bare abort() in a stack trace does not.
inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: broken invariant: %s\n", what);
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Cuts the first line off `rest` (without its newline); the whole of `rest` when it has none.
inline std::string_view take_line(std::string_view& rest) {
  const auto end = rest.find('\n');
  const std::string_view line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return line;
}

// A scratch folder /tmp/<name>.<pid>, removed at a normal exit. A crash or a killed fork-mode
// worker skips atexit, so folders of processes that are gone are swept at the next start instead
// of piling up in /tmp.
inline std::filesystem::path scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(name + ".", 0) != 0) continue;
    const long pid = std::strtol(file.c_str() + name.size() + 1, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) < 0 && errno == ESRCH) {
      fs::remove_all(entry.path(), ec);
    }
  }
  static fs::path dir;
  dir = fs::path("/tmp") / (name + "." + std::to_string(::getpid()));
  fs::remove_all(dir, ec);
  if (!fs::create_directory(dir, ec)) {
    std::fprintf(stderr, "fuzz: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    std::abort();
  }
  fs::permissions(dir, fs::perms::owner_all, ec);
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  });
  return dir;
}

}  // namespace g2m::fuzz
