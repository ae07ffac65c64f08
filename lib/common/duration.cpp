#include "common/duration.h"

#include <cstdint>
#include <limits>

namespace g2m {

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;  // also rejects a sign: durations are never negative
  std::int64_t unit = 1;
  if (digits + 1 == text.size()) {
    switch (text[digits]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return std::nullopt;
    }
  } else if (digits != text.size()) {
    return std::nullopt;
  }
  constexpr std::int64_t max = std::numeric_limits<std::chrono::seconds::rep>::max();
  std::int64_t n = 0;
  for (size_t i = 0; i < digits; ++i) {
    const int d = text[i] - '0';
    if (n > (max - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  if (n > max / unit) return std::nullopt;
  return std::chrono::seconds(n * unit);
}

}  // namespace g2m
