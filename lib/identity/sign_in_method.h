#pragma once

#include <optional>
#include <string_view>

namespace g2m {

// How a sign-in gets the user's consent (docs/mqtt-api.md): the device-code flow (RFC 8628), or the
// browser sign-in (authorization code with PKCE) for tenants whose policy blocks device code.
enum class SignInMethod { device_code, browser };

constexpr const char* to_string(SignInMethod m) {
  return m == SignInMethod::browser ? "browser" : "device_code";
}

constexpr std::optional<SignInMethod> parse_sign_in_method(std::string_view s) {
  if (s == "device_code") return SignInMethod::device_code;
  if (s == "browser") return SignInMethod::browser;
  return std::nullopt;
}

}  // namespace g2m
