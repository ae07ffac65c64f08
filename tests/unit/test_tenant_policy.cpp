#include <doctest/doctest.h>

#include "identity/device_flow.h"
#include "identity/oauth.h"
#include "identity/tenant_policy.h"

using namespace g2m;

namespace {

// When the answers arrive (an HTTP-date Retry-After counts from it).
const SystemTime kNow = std::chrono::sys_days{std::chrono::year{2026} / 12 / 3};

HttpResponse answer(long status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "application/json; charset=utf-8";
  return r;
}

// Microsoft's shape: error, "AADSTSnnnnn: ..." description with a trace, error_codes.
std::string refusal(const std::string& error, int code, bool with_codes = true) {
  return R"({"error":")" + error + R"(","error_description":"AADSTS)" + std::to_string(code) +
         R"(: Access has been blocked by policy.\r\nTrace ID: 1\r\nCorrelation ID: 2",)" +
         (with_codes ? R"("error_codes":[)" + std::to_string(code) + "]," : std::string()) +
         R"("timestamp":"2026-12-03 10:00:00Z","trace_id":"1","correlation_id":"2"})";
}

AuthFailure failure_of(const HttpResponse& r) {
  return std::get<AuthFailure>(parse_token_response(r, kNow));
}

}  // namespace

TEST_CASE("tenant policy: AADSTS530035 is security defaults, never retried") {
  for (const char* error : {"invalid_grant", "access_denied"}) {
    const auto f = failure_of(answer(400, refusal(error, 530035)));
    REQUIRE(f.policy);
    CHECK(*f.policy == TenantPolicy::security_defaults);
    CHECK(f.kind == AuthFailure::Kind::oauth);
    CHECK(f.error == error);
    CHECK(f.description.find("security defaults") != std::string::npos);
    CHECK(f.description.find("browser sign-in") != std::string::npos);
    CHECK(f.description.find("AADSTS530035") != std::string::npos);  // kept for support
  }
}

TEST_CASE("tenant policy: 53003 53000 50097 50005 and 530036 are conditional access") {
  for (int code : {53003, 53000, 50097, 50005, 530036}) {
    for (const char* error : {"invalid_grant", "access_denied"}) {
      const auto f = failure_of(answer(400, refusal(error, code)));
      REQUIRE(f.policy);
      CHECK(*f.policy == TenantPolicy::conditional_access);
      CHECK(f.description.find("Conditional Access") != std::string::npos);
      CHECK(f.description.find("exclude this app") != std::string::npos);
      CHECK(f.description.find("AADSTS" + std::to_string(code)) != std::string::npos);
    }
  }
}

TEST_CASE("tenant policy: the code is recognised in the description when error_codes is absent") {
  const auto f = failure_of(answer(400, refusal("invalid_grant", 53003, /*with_codes=*/false)));
  REQUIRE(f.policy);
  CHECK(*f.policy == TenantPolicy::conditional_access);
  // ... and at the device-code request, where Microsoft answers errors with HTTP 200.
  const auto d = std::get<AuthFailure>(
      parse_device_code_response(answer(200, refusal("invalid_grant", 530035)), kNow));
  REQUIRE(d.policy);
  CHECK(*d.policy == TenantPolicy::security_defaults);
}

TEST_CASE("tenant policy: other AADSTS codes and server errors are no policy refusal") {
  CHECK_FALSE(failure_of(answer(400, refusal("invalid_grant", 70000))).policy);
  CHECK_FALSE(failure_of(answer(400, refusal("invalid_grant", 5300350))).policy);
  // A 503 that happens to mention a policy code is a transient failure, retried as such.
  const auto busy = failure_of(answer(503, refusal("temporarily_unavailable", 53003)));
  CHECK(busy.kind == AuthFailure::Kind::transient);
  CHECK_FALSE(busy.policy);
}

TEST_CASE("tenant policy: a 400 temporarily_unavailable carrying a policy code is a refusal") {
  // "whatever the OAuth error string": only an outage (429, 5xx) is retried.
  const auto f = failure_of(answer(400, refusal("temporarily_unavailable", 53003)));
  REQUIRE(f.policy);
  CHECK(*f.policy == TenantPolicy::conditional_access);
  CHECK(f.kind == AuthFailure::Kind::oauth);
  CHECK_FALSE(failure_of(answer(429, refusal("temporarily_unavailable", 530035))).policy);
}

TEST_CASE("tenant policy: an access_denied policy refusal at a poll is no decline") {
  DeviceCode code;
  code.device_code = Secret("dc");
  code.user_code = "ABC";
  code.verification_uri = "https://microsoft.com/devicelogin";
  const SteadyTime t0{std::chrono::hours(1)};
  DeviceFlow flow(std::move(code), t0, t0, SystemTime{}, 1);
  auto refusal_outcome = parse_token_response(answer(400, refusal("access_denied", 53003)), kNow);
  const auto d = flow.on_poll_result(std::move(refusal_outcome), t0 + Seconds(5));
  CHECK(d.kind == DeviceFlow::Decision::Kind::failed);
  REQUIRE(d.failure);
  CHECK(d.failure->policy == TenantPolicy::conditional_access);
  // A plain access_denied is still the user's decline.
  auto plain = parse_token_response(
      answer(400, R"({"error":"access_denied","error_description":"The user declined"})"), kNow);
  CHECK(flow.on_poll_result(std::move(plain), t0 + Seconds(10)).kind ==
        DeviceFlow::Decision::Kind::declined);
}
