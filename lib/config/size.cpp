#include <cstdint>
#include <limits>

#include "config/config.h"

namespace g2m {

std::optional<std::size_t> parse_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;  // also rejects a sign: sizes are never negative
  const std::string unit = text.substr(digits);
  std::size_t scale = 1;
  if (unit == "KiB") {
    scale = 1024;
  } else if (unit == "MiB") {
    scale = 1024 * 1024;
  } else if (!unit.empty()) {
    return std::nullopt;
  }
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  std::size_t n = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const auto d = static_cast<std::size_t>(text[i] - '0');
    if (n > (max - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  if (n > max / scale) return std::nullopt;
  return n * scale;
}

}  // namespace g2m
