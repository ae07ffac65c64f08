#include "identity/device_flow.h"

namespace g2m {

DeviceFlow::DeviceFlow(DeviceCode code, SteadyTime requested_at, SteadyTime received_at,
                       SystemTime requested_at_system, std::uint64_t jitter_seed)
    : code_(std::move(code)),
      interval_(code_.interval),
      expires_at_(requested_at + code_.expires_in),
      expires_at_system_(requested_at_system + code_.expires_in),
      next_poll_at_(received_at + interval_),
      jitter_(jitter_seed) {}

DeviceFlow::Decision DeviceFlow::on_poll_result(AuthOutcome<TokenResponse> outcome,
                                                SteadyTime now) {
  Decision d;
  if (auto* tokens = std::get_if<TokenResponse>(&outcome)) {
    d.kind = Decision::Kind::approved;
    d.tokens = std::move(*tokens);
    return d;
  }
  const auto& failure = std::get<AuthFailure>(outcome);
  if (failure.kind == AuthFailure::Kind::transient) {
    // RFC 8628 §3.5: after a timeout the client MUST reduce its polling rate; we back off on
    // every transient failure, never polling sooner than the interval.
    const Millis delay = std::max<Millis>(
        retry_delay(transient_failures_, interval_, kMaxBackoff, jitter_, failure.retry_after),
        interval_);
    next_poll_at_ = now + delay;
    d.kind = Decision::Kind::poll_again;
    d.next_poll_at = next_poll_at_;
    d.failure = failure;
    return d;
  }
  transient_failures_ = 0;
  // A tenant-policy refusal may come as access_denied: it is no user's decline (CONTRACT §6).
  if (failure.kind == AuthFailure::Kind::oauth && !failure.policy) {
    const std::string& e = failure.error;
    if (e == "authorization_pending") {
      next_poll_at_ = now + interval_;
      d.next_poll_at = next_poll_at_;
      return d;
    }
    if (e == "slow_down") {
      // RFC 8628 §3.5: +5 s for this and all later requests; GitHub sends the new interval.
      interval_ = std::max(interval_ + Seconds(5), failure.interval.value_or(Seconds(0)));
      next_poll_at_ = now + interval_;
      d.next_poll_at = next_poll_at_;
      d.interval_changed = true;
      return d;
    }
    if (e == "authorization_declined" || e == "access_denied") {
      d.kind = Decision::Kind::declined;
      return d;
    }
    if (e == "expired_token") {
      d.kind = Decision::Kind::expired;
      return d;
    }
  }
  d.kind = Decision::Kind::failed;
  d.failure = failure;
  return d;
}

}  // namespace g2m
