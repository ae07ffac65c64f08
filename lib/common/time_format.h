#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace g2m {

// ISO 8601 UTC in whole seconds with a Z: 2026-11-26T19:04:05Z (the contract's timestamp form).
std::string format_utc(SystemTime t);

// Parses the form above (and fractional seconds, which are dropped). nullopt when it is not one.
std::optional<SystemTime> parse_utc(std::string_view text);

// An HTTP date (RFC 9110 IMF-fixdate, as in Retry-After). nullopt when it is not one.
std::optional<SystemTime> parse_http_date(std::string_view text);

}  // namespace g2m
