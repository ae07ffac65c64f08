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

std::string escape_control_characters(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto escape = [&out](unsigned char c) {
    out += "\\x";
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      escape(c);
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      // A C1 control in UTF-8 (0x9b is a one-byte CSI for many terminals).
      escape(c);
      escape(static_cast<unsigned char>(text[++i]));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
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
    const std::string line = escape_control_characters(message);
    std::lock_guard lock(mutex_);
    if (sink_) sink_(level, line);
  } catch (...) {
    // A failing sink must not take the agent down.
  }
}

}  // namespace g2m
