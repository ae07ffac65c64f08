#include "http/http_failure.h"

#include <algorithm>
#include <charconv>

#include "common/time_format.h"

namespace g2m {

const char* transport_error_code(TransportError error) {
  switch (error) {
    case TransportError::timeout:
      return "timeout";
    case TransportError::tls:
      return "tls_error";
    case TransportError::none:
    case TransportError::network:
      break;
  }
  return "network_error";
}

std::optional<Seconds> parse_retry_after(const std::optional<std::string>& header, SystemTime now) {
  if (!header) return std::nullopt;
  const char* begin = header->data();
  const char* end = begin + header->size();
  long long secs = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, secs);
  if (ptr == end && ec == std::errc()) return std::clamp(Seconds(secs), Seconds(0), kMaxRetryAfter);
  // Digits too many for a long long: a delay of centuries, clamped like any other.
  if (ptr == end && ec == std::errc::result_out_of_range && *begin != '-') return kMaxRetryAfter;
  if (auto when = parse_http_date(*header)) {
    return std::clamp(std::chrono::duration_cast<Seconds>(*when - now), Seconds(0), kMaxRetryAfter);
  }
  return std::nullopt;
}

}  // namespace g2m
