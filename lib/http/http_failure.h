#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "http/http.h"

namespace g2m {

// What a failed or refused HTTP answer says about trying again, read the same way for the
// identity platform and for Graph (CONTRACT §1 Events `error`, §6 Graph and Untrusted input).

// The event word for a transfer that got no HTTP answer: timeout, tls_error or network_error.
const char* transport_error_code(TransportError error);

// A Retry-After header (RFC 9110 §10.2.3: delay-seconds or an HTTP date) as the time left to
// wait, counted from `now` (the injected clock's: a test moves it), clamped to [0, 1 h] so a
// hostile server cannot park a resource or a sign-in for a year. nullopt when absent or
// unreadable.
std::optional<Seconds> parse_retry_after(const std::optional<std::string>& header, SystemTime now);

inline constexpr Seconds kMaxRetryAfter{3600};

}  // namespace g2m
