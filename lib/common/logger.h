#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace g2m {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

const char* to_string(LogLevel level);

// `text` with every control character (C0 including CR, LF, TAB and ESC; DEL; the C1 range
// U+0080..U+009F) written as \xNN, one per byte, so an untrusted string in a log line can neither
// forge another line nor drive the terminal. Everything else, UTF-8 included, is kept.
std::string escape_control_characters(std::string_view text);

// The logger is passed in, never global. A sink receives whole lines; tests capture them to
// prove that no secret is ever logged. Logging never throws. Every line is passed through
// escape_control_characters() before a sink sees it: callers may log what upstream sent.
class Logger {
 public:
  using Sink = std::function<void(LogLevel, std::string_view line)>;

  explicit Logger(LogLevel level = LogLevel::info, Sink sink = stderr_sink());

  void set_level(LogLevel level) { level_ = level; }
  LogLevel level() const { return level_.load(); }
  bool enabled(LogLevel level) const { return level <= level_.load(); }

  template <typename... Args>
  void log(LogLevel level, Args&&... args) {
    if (!enabled(level)) return;
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    write(level, os.str());
  }
  template <typename... Args>
  void error(Args&&... args) {
    log(LogLevel::error, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(Args&&... args) {
    log(LogLevel::warn, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(Args&&... args) {
    log(LogLevel::info, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void debug(Args&&... args) {
    log(LogLevel::debug, std::forward<Args>(args)...);
  }

  static Sink stderr_sink();

 private:
  void write(LogLevel level, const std::string& message) noexcept;

  std::atomic<LogLevel> level_;  // a reload may change it while Paho's threads log
  Sink sink_;
  std::mutex mutex_;  // Paho's threads may log too
};

}  // namespace g2m
