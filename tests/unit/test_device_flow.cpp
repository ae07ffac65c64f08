#include <doctest/doctest.h>

#include "fake_clock.h"
#include "identity/device_flow.h"

using namespace g2m;
using Kind = DeviceFlow::Decision::Kind;

namespace {

DeviceCode code(Seconds interval = Seconds(5), Seconds expires_in = Seconds(900)) {
  DeviceCode c;
  c.device_code = Secret("device-code-secret");
  c.user_code = "E4AAFX9VN";
  c.verification_uri = "https://microsoft.com/devicelogin";
  c.message = "To sign in...";
  c.interval = interval;
  c.expires_in = expires_in;
  return c;
}

AuthFailure oauth(const std::string& error) {
  AuthFailure f;
  f.kind = AuthFailure::Kind::oauth;
  f.error = error;
  return f;
}

AuthFailure transient(const std::string& error = "network_error") {
  AuthFailure f;
  f.kind = AuthFailure::Kind::transient;
  f.error = error;
  return f;
}

TokenResponse tokens() {
  TokenResponse t;
  t.access_token = Secret("at");
  return t;
}

struct Flow {
  test::FakeClock clock;
  SteadyTime requested = clock.steady();
  DeviceFlow flow;
  explicit Flow(DeviceCode c = code(), Millis answer_latency = Millis(200))
      : flow(std::move(c), requested, requested + answer_latency, clock.system(), 42) {
    clock.advance(answer_latency);
  }
};

}  // namespace

TEST_CASE("device flow: the first poll waits a whole interval after the code arrives") {
  Flow f;
  CHECK(f.flow.next_poll_at() == f.clock.steady() + Seconds(5));
}

TEST_CASE("device flow: expiry counts from when the device-code request was sent") {
  Flow f;
  CHECK(f.flow.expires_at() == f.requested + Seconds(900));
  CHECK_FALSE(f.flow.expired(f.requested + Seconds(899)));
  CHECK(f.flow.expired(f.requested + Seconds(900)));
}

TEST_CASE("device flow: pending, pending, then approved") {
  Flow f;
  for (int i = 0; i < 2; ++i) {
    f.clock.advance(Seconds(5));
    auto d = f.flow.on_poll_result(oauth("authorization_pending"), f.clock.steady());
    CHECK(d.kind == Kind::poll_again);
    CHECK(d.next_poll_at == f.clock.steady() + Seconds(5));
    CHECK_FALSE(d.failure.has_value());
  }
  f.clock.advance(Seconds(5));
  auto d = f.flow.on_poll_result(tokens(), f.clock.steady());
  CHECK(d.kind == Kind::approved);
  REQUIRE(d.tokens.has_value());
  CHECK(d.tokens->access_token.reveal() == "at");
}

TEST_CASE("device flow: slow_down adds five seconds to the interval for the rest of the sign-in") {
  Flow f;
  f.clock.advance(Seconds(5));
  auto d = f.flow.on_poll_result(oauth("slow_down"), f.clock.steady());
  CHECK(d.kind == Kind::poll_again);
  CHECK(d.interval_changed);
  CHECK(f.flow.interval() == Seconds(10));
  CHECK(d.next_poll_at == f.clock.steady() + Seconds(10));
  f.clock.advance(Seconds(10));
  d = f.flow.on_poll_result(oauth("authorization_pending"), f.clock.steady());
  CHECK(d.next_poll_at == f.clock.steady() + Seconds(10));
  d = f.flow.on_poll_result(oauth("slow_down"), f.clock.steady());
  CHECK(f.flow.interval() == Seconds(15));
}

TEST_CASE("device flow: slow_down takes a larger interval the server sends") {
  Flow f;
  auto failure = oauth("slow_down");
  failure.interval = Seconds(30);
  f.flow.on_poll_result(failure, f.clock.steady());
  CHECK(f.flow.interval() == Seconds(30));
}

TEST_CASE("device flow: authorization_declined and access_denied end as declined") {
  for (const char* error : {"authorization_declined", "access_denied"}) {
    Flow f;
    CHECK(f.flow.on_poll_result(oauth(error), f.clock.steady()).kind == Kind::declined);
  }
}

TEST_CASE("device flow: expired_token ends as expired") {
  Flow f;
  CHECK(f.flow.on_poll_result(oauth("expired_token"), f.clock.steady()).kind == Kind::expired);
}

TEST_CASE("device flow: bad_verification_code and unknown errors are terminal failures") {
  for (const char* error : {"bad_verification_code", "invalid_client", "invalid_grant"}) {
    Flow f;
    auto d = f.flow.on_poll_result(oauth(error), f.clock.steady());
    CHECK(d.kind == Kind::failed);
    REQUIRE(d.failure.has_value());
    CHECK(d.failure->error == error);
  }
}

TEST_CASE("device flow: transient failures back off exponentially, never under the interval") {
  Flow f;
  Millis previous{0};
  for (int i = 0; i < 12; ++i) {
    auto d = f.flow.on_poll_result(transient("timeout"), f.clock.steady());
    CHECK(d.kind == Kind::poll_again);
    REQUIRE(d.failure.has_value());
    const auto delay = std::chrono::duration_cast<Millis>(d.next_poll_at - f.clock.steady());
    CHECK(delay >= Seconds(5));
    CHECK(delay <= DeviceFlow::kMaxBackoff);
    if (i < 5) CHECK(delay > previous);
    previous = delay;
  }
  CHECK(previous >= Millis(240'000));  // reached the 5-minute cap (minus jitter)
}

TEST_CASE("device flow: a transient failure honours Retry-After") {
  Flow f;
  auto failure = transient("http_429");
  failure.retry_after = Seconds(120);
  auto d = f.flow.on_poll_result(failure, f.clock.steady());
  CHECK(d.next_poll_at - f.clock.steady() >= Seconds(120));
}

TEST_CASE("device flow: a success after transient failures resets nothing it should not") {
  Flow f;
  f.flow.on_poll_result(transient(), f.clock.steady());
  auto d = f.flow.on_poll_result(oauth("authorization_pending"), f.clock.steady());
  CHECK(d.next_poll_at == f.clock.steady() + Seconds(5));
}

TEST_CASE("device flow: a 15-minute sign-in with a 5 s interval polls at most 180 times") {
  Flow f;
  int polls = 0;
  while (true) {
    const auto next = f.flow.next_poll_at();
    if (next >= f.flow.expires_at()) break;
    f.clock.advance(std::chrono::duration_cast<Millis>(next - f.clock.steady()));
    f.flow.poll_sent();
    ++polls;
    auto d = f.flow.on_poll_result(oauth("authorization_pending"), f.clock.steady());
    REQUIRE(d.kind == Kind::poll_again);
  }
  CHECK(polls <= 180);
  CHECK(polls >= 178);
  CHECK(f.flow.polls() == polls);
}
