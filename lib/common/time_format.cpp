#include "common/time_format.h"

#include <ctime>

namespace g2m {

std::string format_utc(SystemTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

namespace {
// long long, not time_t: armhf (Debian 12) has a 32-bit time_t, where this constant overflows.
constexpr long long kLatestTime = 7'258'118'400;  // 2200-01-01T00:00:00Z

std::optional<SystemTime> parse_with(std::string_view text, const char* format) {
  const std::string copy(text);
  std::tm tm{};
  const char* end = strptime(copy.c_str(), format, &tm);
  if (end == nullptr) return std::nullopt;
  // Accept and drop fractional seconds; anything else after the format is garbage.
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (*end == 'Z') ++end;
  if (*end != '\0') return std::nullopt;
  const std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits: it ends in 2262. Nothing we read is meant to be
  // that far out, and converting such a date would overflow.
  if (secs < 0 || static_cast<long long>(secs) > kLatestTime) return std::nullopt;
  return std::chrono::system_clock::from_time_t(secs);
}
}  // namespace

std::optional<SystemTime> parse_utc(std::string_view text) {
  return parse_with(text, "%Y-%m-%dT%H:%M:%S");
}

std::optional<SystemTime> parse_http_date(std::string_view text) {
  // strptime's %Z does not parse "GMT" portably, so the zone is matched literally.
  if (text.size() < 4 || text.substr(text.size() - 4) != " GMT") return std::nullopt;
  return parse_with(text.substr(0, text.size() - 4), "%a, %d %b %Y %H:%M:%S");
}

}  // namespace g2m
