#pragma once

#include <optional>

namespace g2m {

// Why an account is signed out: auth/state's `reason` (docs/mqtt-api.md "Topics the agent
// publishes").
enum class SignOutReason {
  logout,
  cancelled,
  declined,
  code_expired,
  refresh_rejected,
  blocked,  // the tenant's policy refuses the device code or tokens it produced
  error,
  shutdown,
};

constexpr const char* to_string(SignOutReason r) {
  switch (r) {
    case SignOutReason::logout:
      return "logout";
    case SignOutReason::cancelled:
      return "cancelled";
    case SignOutReason::declined:
      return "declined";
    case SignOutReason::code_expired:
      return "code_expired";
    case SignOutReason::refresh_rejected:
      return "refresh_rejected";
    case SignOutReason::blocked:
      return "blocked";
    case SignOutReason::error:
      return "error";
    case SignOutReason::shutdown:
      return "shutdown";
  }
  return "error";
}

// The reasons whose auth/state carries the error that caused them.
constexpr bool carries_error(SignOutReason r) {
  return r == SignOutReason::error || r == SignOutReason::refresh_rejected ||
         r == SignOutReason::blocked;
}

}  // namespace g2m
