#pragma once

#include <optional>

#include "common/backoff.h"
#include "common/clock.h"
#include "identity/oauth.h"

namespace g2m {

// One device-code sign-in after the code has arrived (RFC 8628 §3.4–3.5): when to poll, and
// what each poll answer means. Pure: no I/O, time comes in as arguments.
class DeviceFlow {
 public:
  struct Decision {
    enum class Kind {
      poll_again,  // schedule the next poll at next_poll_at
      approved,    // tokens holds the answer
      declined,
      expired,
      failed,  // a terminal error: failure says which
    };
    Kind kind = Kind::poll_again;
    SteadyTime next_poll_at{};
    bool interval_changed = false;        // slow_down raised it: re-publish the code
    std::optional<AuthFailure> failure;   // set for failed, and for a transient retry
    std::optional<TokenResponse> tokens;  // set for approved
  };

  // `requested_at` is when the device-code request was sent (expiry counts from there, as
  // Microsoft documents); `received_at` is when its answer arrived (the first poll waits a
  // whole interval after it).
  DeviceFlow(DeviceCode code, SteadyTime requested_at, SteadyTime received_at,
             SystemTime requested_at_system, std::uint64_t jitter_seed);

  const DeviceCode& code() const { return code_; }
  Seconds interval() const { return interval_; }
  SteadyTime next_poll_at() const { return next_poll_at_; }
  SteadyTime expires_at() const { return expires_at_; }
  SystemTime expires_at_system() const { return expires_at_system_; }
  bool expired(SteadyTime now) const { return now >= expires_at_; }
  int polls() const { return polls_; }

  // Call when a poll is sent.
  void poll_sent() { ++polls_; }
  // Call with the poll's answer as it arrives at `now`.
  Decision on_poll_result(AuthOutcome<TokenResponse> outcome, SteadyTime now);

  static constexpr Millis kMaxBackoff{300'000};  // CONTRACT §6: backoff capped at 5 minutes

 private:
  DeviceCode code_;
  Seconds interval_;
  SteadyTime expires_at_;
  SystemTime expires_at_system_;
  SteadyTime next_poll_at_;
  int polls_ = 0;
  int transient_failures_ = 0;
  Jitter jitter_;
};

}  // namespace g2m
