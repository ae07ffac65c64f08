#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "common/logger.h"
#include "fake_clock.h"
#include "identity/endpoints.h"
#include "identity/identity_context.h"
#include "identity/identity_options.h"
#include "loop/event_loop.h"
#include "recording_http.h"

namespace g2m::test {

inline constexpr const char* kKitchenClientId = "3f2c1a9e-5b7d-4c8e-9a1f-2d3e4f5a6b7c";

// The account `kitchen` on a loopback Microsoft authority, as config.yaml would give it with
// only its client_id set.
inline IdentityOptions kitchen_options() {
  IdentityOptions o;
  o.platform.authority = "http://127.0.0.1:9";
  o.platform.graph = "http://127.0.0.1:9/v1.0";
  o.name = "kitchen";
  o.client_id = kKitchenClientId;
  o.scopes = {"User.Read"};
  o.redirect_uri = o.platform.authority + "/common/oauth2/nativeclient";
  return o;
}

// HTTP 503 with a Retry-After date (RFC 9110 IMF-fixdate): busy until then.
inline HttpResponse busy_until(const char* http_date) {
  HttpResponse r;
  r.status = 503;
  r.retry_after = http_date;
  return r;
}

// What the identity code works with, on the fake clock: a loop, an HTTP client the test answers,
// a silent log and the endpoint resolver, for one account.
struct IdentityRig {
  explicit IdentityRig(IdentityOptions account = kitchen_options()) : options(std::move(account)) {}

  IdentityContext context(std::uint64_t seed) {
    return IdentityContext{options, loop, http, resolver, log, seed};
  }
  // Runs the loop until a request is pending, no timer is left or `up_to` has passed (the fake
  // poller moves the clock to each timer).
  void run_until_request(Millis up_to) {
    const auto until = clock.steady() + up_to;
    while (clock.steady() < until && !http.has_pending() && loop.timer_count() > 0) {
      loop.run_once(std::chrono::duration_cast<Millis>(until - clock.steady()));
    }
  }

  FakeClock clock;
  FakePoller poller{clock};
  RecordingHttp http;
  Logger log{LogLevel::error, [](LogLevel, std::string_view) {}};
  IdentityOptions options;
  EventLoop loop{clock, poller};
  EndpointResolver resolver{options.platform, http, log};
};

}  // namespace g2m::test
