#include "common/logger.h"

#include <cstdio>

#include "common/time_format.h"

namespace g2m {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warn";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "?";
}

Logger::Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {}

Logger::Sink Logger::stderr_sink() {
  return [](LogLevel level, std::string_view line) {
    const std::string stamp = format_utc(std::chrono::system_clock::now());
    std::fprintf(stderr, "%s %-5s %.*s\n", stamp.c_str(), to_string(level),
                 static_cast<int>(line.size()), line.data());
    std::fflush(stderr);
  };
}

void Logger::write(LogLevel level, const std::string& message) noexcept {
  try {
    std::lock_guard lock(mutex_);
    if (sink_) sink_(level, message);
  } catch (...) {
    // A failing sink must not take the agent down.
  }
}

}  // namespace g2m
