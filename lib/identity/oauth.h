#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"
#include "http/http.h"
#include "http/http_failure.h"
#include "identity/tenant_policy.h"
#include "identity/token_set.h"

namespace g2m {

// How a request to the identity platform failed, already classified (docs/mqtt-api.md).
struct AuthFailure {
  enum class Kind {
    oauth,      // the platform answered with an OAuth `error` (any HTTP status)
    transient,  // network, timeout, TLS, 5xx, 429, temporarily_unavailable, 200 that is not JSON
    terminal,   // a 4xx other than 429 whose body is not JSON, or an unusable answer
  };
  Kind kind = Kind::transient;
  std::string error;  // OAuth `error`, or network_error/timeout/tls_error/invalid_response/http_<n>
  std::string
      description;  // first line of error_description (with the AADSTS code) or our sentence
  std::optional<int> aadsts;           // first of error_codes
  std::vector<int> error_codes;        // all of them (Microsoft's AADSTS numbers)
  std::optional<TenantPolicy> policy;  // the tenant's policy refused (never retried)
  std::optional<Seconds> retry_after;  // from a Retry-After header
  std::optional<Seconds> interval;     // an `interval` carried by a slow_down answer
  std::optional<long> http_status;
};

struct DeviceCode {
  Secret device_code;
  std::string user_code;
  std::string verification_uri;
  std::optional<std::string> verification_uri_complete;
  std::string message;  // the platform's, or one built from code and URL
  Seconds expires_in{900};
  Seconds interval{5};  // RFC 8628 §3.2: absent means 5
};

struct TokenResponse {
  Secret access_token;
  Secret refresh_token;
  Secret id_token;
  Seconds expires_in{3600};
  std::vector<std::string> scopes;
};

template <typename T>
using AuthOutcome = std::variant<T, AuthFailure>;

// Bounds on what a server may ask of us (docs/mqtt-api.md "Untrusted input"): longer values are
// clamped to these, so a broken or hostile server cannot park a sign-in or a retry for a year.
inline constexpr Seconds kMaxDeviceCodeLifetime{3600};
inline constexpr Seconds kMaxPollInterval{60};
inline constexpr Seconds kMaxAccessTokenLifetime{24 * 3600};
inline constexpr std::size_t kMaxUserCodeLength = 32;

// Response classification and parsing: pure functions of the HTTP answer and of `now`, the
// injected clock's system time when it arrived (an HTTP-date Retry-After becomes a delay from it).
// `authority` is the URL the device-code request went to (under identity.authority, or the OIDC
// device endpoint): only when it is a loopback http:// URL may the verification URIs be http://
// too; otherwise (and when it is left empty) they must be https://. A URI that is not, or a
// user_code that is not 1-32 printable ASCII characters, is an `invalid_response` (transient:
// retried). Control characters are removed from `message`.
AuthOutcome<DeviceCode> parse_device_code_response(const HttpResponse& response, SystemTime now,
                                                   std::string_view authority = {});
AuthOutcome<TokenResponse> parse_token_response(const HttpResponse& response, SystemTime now);
// Classifies an answer that is not a success (shared by the two parsers and by refresh).
AuthFailure classify_failure(const HttpResponse& response, SystemTime now);

// Whether `authority` is a loopback http:// URL (the only case where http:// verification URIs
// are accepted).
bool is_loopback_http(std::string_view authority);

// `text` without control characters (C0, DEL and C1): for strings from upstream that are shown
// to people (a device code's message).
std::string strip_control_characters(std::string_view text);

// `name` and `preferred_username` (or `email`) from an id_token's claims; never verifies it
// (the token came straight from the token endpoint over TLS) and never looks at access tokens.
std::optional<User> user_from_id_token(const std::string& id_token);

// The scopes the agent requests: the configured ones plus openid profile offline_access.
std::vector<std::string> requested_scopes(const std::vector<std::string>& configured);
std::string join_scopes(const std::vector<std::string>& scopes);

}  // namespace g2m
