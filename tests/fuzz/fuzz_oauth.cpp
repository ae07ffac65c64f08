// Fuzzes the identity platform's answers: parse_device_code_response (v2 and v1 shapes: the same
// parser), parse_token_response, classify_failure and user_from_id_token.
//
// Input: one selector byte, then the HTTP body.
//   bits 0-1  parser: 0 device code, 1 token (then the id_token it carries), 2 classify_failure,
//             3 user_from_id_token on the body itself
//   bits 2-4  HTTP status: 200 400 401 403 429 500 503, or 7 = a transport error (status 0)
//   bits 5-6  Retry-After: none, "7", an HTTP date, "soon" (not a number, not a date)
//   bit  7    the body was truncated by the client's size limit (the parsers must not care)

#include <cctype>
#include <string>
#include <variant>

#include "fuzz_support.h"
#include "identity/oauth.h"

namespace {

using g2m::fuzz::require;

constexpr long kStatuses[] = {200, 400, 401, 403, 429, 500, 503, 0};
const char* const kRetryAfter[] = {nullptr, "7", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"};
// When the answer arrives: 28 minutes before the HTTP-date above.
const g2m::SystemTime kNow =
    std::chrono::sys_days{std::chrono::year{2015} / 10 / 21} + std::chrono::hours(7);

void check_failure(const g2m::AuthFailure& f, const g2m::HttpResponse& r) {
  require(!f.description.empty() || f.error.empty(), "a failure with an error is described");
  if (f.retry_after) require(f.retry_after->count() >= 0, "Retry-After is never negative");
  if (f.retry_after) require(*f.retry_after <= g2m::kMaxRetryAfter, "Retry-After is at most 1 h");
  if (f.interval) require(f.interval->count() > 0, "a slow_down interval is positive");
  if (f.interval) require(*f.interval <= g2m::kMaxPollInterval, "an interval is at most 60 s");
  if (!r.ok()) {
    require(f.kind == g2m::AuthFailure::Kind::transient, "transport errors are transient");
  } else if (r.status == 429 || r.status >= 500) {
    require(f.kind == g2m::AuthFailure::Kind::transient, "429 and 5xx are transient");
  }
}

bool printable(const std::string& s) {
  for (const char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// The parser is called without an authority, so only https:// may pass.
bool https(const std::string& uri) {
  if (uri.size() < 9) return false;
  std::string scheme = uri.substr(0, 8);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme == "https://";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  g2m::HttpResponse r;
  r.status = kStatuses[(selector >> 2) & 7];
  if (r.status == 0) {
    r.error = g2m::TransportError::network;
    r.error_message = "Could not resolve host: login.microsoftonline.com";
  }
  if (const char* retry = kRetryAfter[(selector >> 5) & 3]) r.retry_after = retry;
  r.truncated = (selector & 0x80) != 0;
  r.content_type = "application/json; charset=utf-8";
  r.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);

  switch (selector & 3) {
    case 0: {
      const auto outcome = g2m::parse_device_code_response(r, kNow);
      if (const auto* code = std::get_if<g2m::DeviceCode>(&outcome)) {
        require(r.ok() && r.status == 200, "a device code comes only with HTTP 200");
        require(!code->device_code.empty() && !code->user_code.empty(),
                "a device code has device_code and user_code");
        require(code->expires_in.count() > 0, "expires_in is positive");
        require(code->interval.count() > 0, "interval is positive");
        require(!code->message.empty(), "there is always a message to show");
        require(code->expires_in <= g2m::kMaxDeviceCodeLifetime, "expires_in is at most 1 h");
        require(code->interval <= g2m::kMaxPollInterval, "interval is at most 60 s");
        require(code->user_code.size() <= g2m::kMaxUserCodeLength && printable(code->user_code),
                "a user code is 1-32 printable ASCII characters");
        require(https(code->verification_uri), "verification_uri is https://");
        if (code->verification_uri_complete) {
          require(https(*code->verification_uri_complete), "verification_uri_complete is https://");
        }
        for (const char c : code->message) {
          require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
                  "a message holds no control character");
        }
      } else {
        check_failure(std::get<g2m::AuthFailure>(outcome), r);
      }
      break;
    }
    case 1: {
      const auto outcome = g2m::parse_token_response(r, kNow);
      if (const auto* tokens = std::get_if<g2m::TokenResponse>(&outcome)) {
        require(r.ok() && r.status == 200, "tokens come only with HTTP 200");
        require(!tokens->access_token.empty(), "a token answer has an access token");
        require(tokens->expires_in.count() > 0, "expires_in is positive");
        require(tokens->expires_in <= g2m::kMaxAccessTokenLifetime, "expires_in is at most 24 h");
        for (const char c : tokens->access_token.reveal()) {
          require(c > 0x20 && c < 0x7f, "an access token can never break a header");
        }
        for (const auto& scope : tokens->scopes) {
          require(!scope.empty() && scope.find(' ') == std::string::npos,
                  "scopes are split on spaces");
        }
        // What the agent does next with a fresh answer.
        if (auto user = g2m::user_from_id_token(tokens->id_token.reveal())) {
          require(!user->name.empty() || !user->username.empty(), "a user has a name");
        }
      } else {
        check_failure(std::get<g2m::AuthFailure>(outcome), r);
      }
      break;
    }
    case 2:
      check_failure(g2m::classify_failure(r, kNow), r);
      break;
    case 3:
      if (auto user = g2m::user_from_id_token(r.body)) {
        require(!user->name.empty() || !user->username.empty(), "a user has a name");
      }
      break;
  }
  return 0;
}
