// Every outcome of a device-code sign-in (CONTRACT §6 Device flow, §1 auth/state, auth/code,
// events, §2 login / cancel), as a display sees it over MQTT, with the simulator's protocol
// counters as the referee.
#include <doctest/doctest.h>

#include <cctype>

#include "scenario_extra.h"

using namespace g2m::test;

namespace {

const char* const kCode = "graph2mqtt/kitchen/auth/code";
const char* const kState = "graph2mqtt/kitchen/auth/state";

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The auth/state of a sign-in that ended with `reason`: signed out, no user, no code.
void check_signed_out_state(const rapidjson::Value& state, const std::string& reason) {
  CHECK(json_str(state, "state") == "signed_out");
  CHECK(json_str(state, "reason") == reason);
  CHECK(state["code"].IsNull());
  CHECK(state["user"].IsNull());
  CHECK(state["expires_at"].IsNull());
}

// After a sign-in ended (index `since` before the end): auth/code was cleared and a display
// connecting now gets no code.
void check_code_cleared(Scenario& s, std::size_t since) {
  wait_cleared(s, kCode, since);
  CHECK(s.display.retained_value(kCode) == std::nullopt);
}

void check_protocol_followed(Scenario& s) {
  const auto counters = s.simulator.counters();
  CHECK_MESSAGE(counters.interval_violations == 0, counters.json);
}

// An OAuth error answered to a poll ends the sign-in: auth_error (retry_in null, the first line
// of the description with its AADSTS code), then signed_out with reason `error`.
void check_terminal_poll_error(const std::string& failure, const std::string& error,
                               const std::string& aadsts) {
  Scenario s;
  wait_started(s);
  s.simulator.fail(failure);
  const auto since = s.display.mark();
  s.login();

  auto auth_error = s.wait_event("kitchen", "auth_error", since);
  auto ev = auth_error.json();
  CHECK(json_str(ev, "error") == error);
  const auto description = json_str(ev, "description");
  CHECK(description.find(aadsts) != std::string::npos);
  CHECK(description.find('\n') == std::string::npos);  // the first line only
  CHECK(description.find('\r') == std::string::npos);
  CHECK(description.find("Trace ID") == std::string::npos);
  REQUIRE(ev.HasMember("retry_in"));
  CHECK(ev["retry_in"].IsNull());

  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(json_str(signed_out.json(), "reason") == "error");
  CHECK(auth_error.index < signed_out.index);
  check_signed_out_state(s.wait_state("kitchen", "signed_out", since).json(), "error");
  check_code_cleared(s, since);
  check_signed_out_state(retained_state(s), "error");
  CHECK(events_since(s, "kitchen", since) ==
        std::vector<std::string>{"code_issued", "auth_error", "signed_out"});
  check_protocol_followed(s);
}

// A transient failure answered to a poll is reported (auth_error with retry_in) and the sign-in
// goes on: the user approves and the account is signed in. Returns the auth_error event.
Message check_transient_poll_failure(Scenario& s, const std::string& failure,
                                     const std::string& error) {
  s.simulator.fail(failure);
  const auto since = s.display.mark();
  const auto user_code = s.login();

  auto auth_error = s.wait_event("kitchen", "auth_error", since, 20s);
  auto ev = auth_error.json();
  CHECK(json_str(ev, "error") == error);
  CHECK_FALSE(json_str(ev, "description").empty());
  REQUIRE(ev["retry_in"].IsInt());
  CHECK(ev["retry_in"].GetInt() >= 1);
  // The sign-in is not lost: still pending with the same code.
  auto state = status_of(s);
  CHECK(json_str(state, "state") == "pending");
  CHECK(json_str(state["code"], "user_code") == user_code);

  // The agent polls again; the user approves; the sign-in completes.
  const long polls = sim_polls(s.simulator, user_code);
  REQUIRE(poll_until([&] { return sim_polls(s.simulator, user_code) > polls; }, 20s));
  const auto before_approve = s.display.mark();
  s.simulator.approve(user_code);
  s.wait_event("kitchen", "signed_in", before_approve, 20s);
  s.wait_state("kitchen", "signed_in", before_approve);
  const auto events = events_since(s, "kitchen", since);
  CHECK_FALSE(contains(events, "signed_out"));
  CHECK_FALSE(contains(events, "code_expired"));
  check_protocol_followed(s);
  CHECK(s.simulator.counters().devicecode == 1);
  return auth_error;
}

}  // namespace

// --- authorization_pending, slow_down, missing or string numbers ---------------------------------

TEST_CASE("sign-in: authorization_pending keeps the agent polling until the user approves") {
  Scenario s;
  wait_started(s);
  const auto since = s.display.mark();
  const auto user_code = s.login();

  // The simulator answers authorization_pending: the agent keeps polling, the code stays out.
  REQUIRE(poll_until([&] { return sim_polls(s.simulator, user_code) >= 3; }, 10s));
  auto pending = status_of(s);
  CHECK(json_str(pending, "state") == "pending");
  CHECK(json_str(pending["code"], "user_code") == user_code);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"code_issued"});

  const auto before_approve = s.display.mark();
  s.simulator.approve(user_code);
  s.wait_event("kitchen", "signed_in", before_approve);
  auto state = s.wait_state("kitchen", "signed_in", before_approve).json();
  CHECK(json_str(state["user"], "username") == "adele@contoso.com");
  check_code_cleared(s, before_approve);

  // pending, then signed_in: nothing in between.
  std::vector<std::string> states;
  for (const auto& m : messages_since(s, kState, since))
    states.push_back(json_str(m.json(), "state"));
  CHECK(states == std::vector<std::string>{"pending", "signed_in"});
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"code_issued", "signed_in"});

  const auto counters = s.simulator.counters();
  CHECK(counters.interval_violations == 0);
  CHECK(counters.slow_down_sent == 0);
  CHECK(counters.devicecode == 1);
  CHECK(counters.token >= 4);
  const auto codes = sim_codes(s.simulator);
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].state == "redeemed");
  check_no_secrets(s);
}

TEST_CASE(
    "sign-in: slow_down raises the interval by 5 s, re-publishes auth/code and slows polling") {
  Scenario s;  // interval 1
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"token","count":1,"error":"slow_down","error_codes":[70016],)"
                   R"("description":"OAuth 2.0 device flow error. Polling too frequently."})");
  const auto since = s.display.mark();
  const auto user_code = s.login();

  // auth/code is re-published with the new interval, and so is auth/state's code.
  auto republished = s.display.wait_for_json(
      kCode,
      [](const rapidjson::Value& v) {
        return v.IsObject() && v["interval"].IsInt() && v["interval"].GetInt() == 6;
      },
      10s, since);
  CHECK(json_str(republished.json(), "user_code") == user_code);
  auto state = s.display
                   .wait_for_json(
                       kState,
                       [](const rapidjson::Value& v) {
                         return json_str(v, "state") == "pending" && v["code"].IsObject() &&
                                v["code"]["interval"].IsInt() &&
                                v["code"]["interval"].GetInt() == 6;
                       },
                       10s, since)
                   .json();
  CHECK(json_str(state["code"], "user_code") == user_code);
  CHECK(sim_polls(s.simulator, user_code) == 1);

  // The next poll comes 6 s after the slow_down answer, not 1 s.
  s.simulator.approve(user_code);
  auto signed_in = s.wait_event("kitchen", "signed_in", since, 15s);
  CHECK(seconds_between(republished.arrived, signed_in.arrived) >= 5.5);
  CHECK(sim_polls(s.simulator, user_code) == 2);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "auth_error"));
  check_protocol_followed(s);
}

TEST_CASE("sign-in: slow_down carrying a larger interval uses that interval") {
  Scenario s;  // interval 1: interval + 5 = 6 < 8
  wait_started(s);
  s.simulator.fail(
      R"({"endpoint":"token","count":1,"status":400,"content_type":"application/json",)"
      R"("body":"{\"error\":\"slow_down\",\"error_description\":\"Slow down.\",\"interval\":8}"})");
  const auto since = s.display.mark();
  const auto user_code = s.login();
  auto republished = s.display.wait_for_json(
      kCode,
      [](const rapidjson::Value& v) {
        return v.IsObject() && v["interval"].IsInt() && v["interval"].GetInt() != 1;
      },
      10s, since);
  CHECK(republished.json()["interval"].GetInt() == 8);
  CHECK(json_str(republished.json(), "user_code") == user_code);
  check_protocol_followed(s);
}

TEST_CASE("sign-in: a device-code answer without an interval means polling every 5 s") {
  Scenario s;
  wait_started(s);
  // The simulator enforces 5 s but does not say so: an agent polling sooner is counted.
  s.simulator.config(R"({"omit_interval":true,"interval":5})");
  const auto since = s.display.mark();
  const auto user_code = s.login();
  auto code = s.display.wait_for_json(
      kCode, [](const rapidjson::Value& v) { return v.IsObject(); }, 10s, since);
  REQUIRE(code.json()["interval"].IsInt());
  CHECK(code.json()["interval"].GetInt() == 5);
  auto state = s.wait_state("kitchen", "pending", since).json();
  CHECK(state["code"]["interval"].GetInt() == 5);

  s.simulator.approve(user_code);
  auto signed_in = s.wait_event("kitchen", "signed_in", since, 15s);
  CHECK(seconds_between(code.arrived, signed_in.arrived) >= 4.5);
  CHECK(sim_polls(s.simulator, user_code) == 1);
  const auto counters = s.simulator.counters();
  CHECK(counters.interval_violations == 0);
  CHECK(counters.slow_down_sent == 0);
}

TEST_CASE("sign-in: numbers sent as strings are accepted") {
  Scenario s;
  wait_started(s);
  s.simulator.config(R"({"string_numbers":true})");
  const auto since = s.display.mark();
  const auto user_code = s.login();
  auto code = s.display
                  .wait_for_json(
                      kCode, [](const rapidjson::Value& v) { return v.IsObject(); }, 10s, since)
                  .json();
  // "interval":"1" is 1, not the default 5; "expires_in":"900" gives an expiry 900 s away.
  REQUIRE(code["interval"].IsInt());
  CHECK(code["interval"].GetInt() == 1);
  const auto code_expiry = parse_utc(json_str(code, "expires_at"));
  REQUIRE(code_expiry.has_value());
  CHECK(*code_expiry > now_utc() + 850);
  CHECK(*code_expiry <= now_utc() + 901);

  const auto before_approve = s.display.mark();
  s.simulator.approve(user_code);
  auto state = s.wait_state("kitchen", "signed_in", before_approve).json();
  // "expires_in":"3600" in the token answer.
  const auto token_expiry = parse_utc(json_str(state, "expires_at"));
  REQUIRE(token_expiry.has_value());
  CHECK(*token_expiry > now_utc() + 3500);
  CHECK(*token_expiry <= now_utc() + 3601);
  wait_resources(s, before_approve);
  check_protocol_followed(s);
}

// --- declined, expired, renewed ---------------------------------------------------------------

TEST_CASE("sign-in: a declined sign-in emits declined then signed_out and clears the code") {
  Scenario s;
  wait_started(s);
  const auto user_code = s.login();
  const auto since = s.display.mark();
  s.simulator.decline(user_code);

  auto declined = s.wait_event("kitchen", "declined", since);
  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(declined.index < signed_out.index);
  CHECK(json_str(signed_out.json(), "reason") == "declined");
  check_signed_out_state(s.wait_state("kitchen", "signed_out", since).json(), "declined");
  check_code_cleared(s, since);
  check_signed_out_state(retained_state(s), "declined");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"declined", "signed_out"});
  const auto codes = sim_codes(s.simulator);
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].state == "declined");
  check_protocol_followed(s);
}

TEST_CASE("sign-in: a code that expires unused ends the sign-in with code_expired") {
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--expires-in", "3"};
  Scenario s(options);
  wait_started(s);
  const auto since = s.display.mark();
  s.login();
  auto code = wait_object(s, kCode, since);

  auto expired = s.wait_event("kitchen", "code_expired", since, 10s);
  REQUIRE(expired.json()["renewing"].IsBool());
  CHECK_FALSE(expired.json()["renewing"].GetBool());
  // Not before the expiry. Compared on the agent's own timestamps: the display's arrival times
  // would shift with the broker's delivery delay on a loaded machine.
  const auto expires_at = json_str(code.json(), "expires_at");
  REQUIRE_FALSE(expires_at.empty());
  CHECK(json_str(expired.json(), "at") >= expires_at);
  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(expired.index < signed_out.index);
  CHECK(json_str(signed_out.json(), "reason") == "code_expired");
  check_signed_out_state(s.wait_state("kitchen", "signed_out", since).json(), "code_expired");
  check_code_cleared(s, since);
  CHECK(events_since(s, "kitchen", since) ==
        std::vector<std::string>{"code_issued", "code_expired", "signed_out"});
  CHECK(s.simulator.counters().devicecode == 1);  // no renewal without renew_code
  check_protocol_followed(s);
}

TEST_CASE(
    "sign-in: with renew_code an expired code is replaced at once, auth/state stays pending") {
  ScenarioOptions options;
  options.accounts = kitchen_account("  renew_code: true\n");
  options.simulator_args = {"--interval", "1", "--expires-in", "3"};
  Scenario s(options);
  wait_started(s);
  const auto since = s.display.mark();
  const auto first_code = s.login();
  auto first_pending = s.wait_state("kitchen", "pending", since).json();

  auto expired = s.wait_event("kitchen", "code_expired", since, 10s);
  REQUIRE(expired.json()["renewing"].IsBool());
  CHECK(expired.json()["renewing"].GetBool());

  // While the new code is requested: pending, code and expires_at null.
  auto renewing = s.display
                      .wait_for_json(
                          kState,
                          [](const rapidjson::Value& v) {
                            return json_str(v, "state") == "pending" && v["code"].IsNull();
                          },
                          10s, since)
                      .json();
  CHECK(renewing["expires_at"].IsNull());
  CHECK(renewing["reason"].IsNull());

  // The new code is published, and auth/state carries it (S never left pending).
  auto second = s.display.wait_for_json(
      kCode,
      [&](const rapidjson::Value& v) {
        return v.IsObject() && json_str(v, "user_code") != first_code;
      },
      10s, since);
  const auto second_code = json_str(second.json(), "user_code");
  auto second_pending =
      s.display
          .wait_for_json(
              kState,
              [&](const rapidjson::Value& v) {
                return v["code"].IsObject() && json_str(v["code"], "user_code") == second_code;
              },
              10s, since)
          .json();
  CHECK(json_str(second_pending, "state") == "pending");
  CHECK(json_str(second_pending, "since") == json_str(first_pending, "since"));
  auto issued = s.display.wait_for_json(
      "graph2mqtt/kitchen/events",
      [&](const rapidjson::Value& v) {
        return json_str(v, "event") == "code_issued" && json_str(v, "user_code") == second_code;
      },
      10s, since);
  CHECK(expired.index < issued.index);
  for (const auto& m : messages_since(s, kState, since)) {
    CHECK_MESSAGE(json_str(m.json(), "state") == "pending", m.describe());
  }
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  CHECK(s.simulator.counters().devicecode == 2);

  const auto before_approve = s.display.mark();
  s.simulator.approve(second_code);
  s.wait_state("kitchen", "signed_in", before_approve);
  check_code_cleared(s, before_approve);
  check_protocol_followed(s);
}

// --- errors -------------------------------------------------------------------------------------

TEST_CASE("sign-in: bad_verification_code ends the sign-in with auth_error and reason error") {
  check_terminal_poll_error(
      R"({"endpoint":"token","count":1,"error":"bad_verification_code","error_codes":[70018],)"
      R"("description":"Invalid verification code due to User typing in wrong user code for device code flow."})",
      "bad_verification_code", "AADSTS70018");
}

TEST_CASE("sign-in: another OAuth error while polling ends the sign-in with reason error") {
  check_terminal_poll_error(
      R"({"endpoint":"token","count":1,"status":401,"error":"invalid_client","error_codes":[7000218],)"
      R"("description":"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."})",
      "invalid_client", "AADSTS7000218");
}

TEST_CASE(
    "sign-in: a Conditional Access refusal of /devicecode says the tenant blocks device-code "
    "sign-in") {
  // Under sign_in_method device_code a policy refusal ends as blocked (CONTRACT §6 "Tenant
  // policy"); under auto the browser sign-in follows (test_browser_sign_in.cpp).
  ScenarioOptions o;
  o.accounts = kitchen_account("  sign_in_method: device_code\n");
  Scenario s(o);
  wait_started(s);
  const auto first = s.wait_state("kitchen", "signed_out").json();
  s.simulator.fail(
      R"({"endpoint":"devicecode","count":1,"error":"invalid_grant","error_codes":[53003],)"
      R"("description":"Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."})");
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  CHECK_FALSE(reply.HasMember("retry_in"));

  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(ev, "error") == "invalid_grant");
  const auto description = json_str(ev, "description");
  CHECK(description.find("53003") != std::string::npos);
  CHECK_MESSAGE(lower(description).find("block") != std::string::npos, description);
  CHECK_MESSAGE(lower(description).find("device") != std::string::npos, description);
  CHECK(ev["retry_in"].IsNull());

  auto state =
      s.display
          .wait_for_json(
              kState, [](const rapidjson::Value& v) { return json_str(v, "reason") == "blocked"; },
              10s, since)
          .json();
  check_signed_out_state(state, "blocked");
  CHECK(json_str(state["error"], "policy") == "conditional_access");
  CHECK(json_str(state, "since") == json_str(first, "since"));  // S did not change
  // No code was ever shown.
  for (const auto& m : messages_since(s, kCode, since)) CHECK(m.payload.empty());
  for (const auto& m : messages_since(s, kState, since)) {
    CHECK(json_str(m.json(), "state") == "signed_out");
  }
  CHECK(s.display.retained_value(kCode) == std::nullopt);
  CHECK(s.simulator.counters().devicecode == 1);
}

TEST_CASE(
    "sign-in: a Conditional Access refusal at redemption says the tenant blocks device-code "
    "sign-in") {
  ScenarioOptions o;
  o.accounts = kitchen_account("  sign_in_method: device_code\n");
  Scenario s(o);
  wait_started(s);
  const auto user_code = s.login();
  s.simulator.fail(R"({"endpoint":"token","count":1,"error":"invalid_grant","error_codes":[50097],)"
                   R"("description":"Device authentication is required."})");
  const auto since = s.display.mark();
  s.simulator.approve(user_code);
  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  const auto description = json_str(ev, "description");
  CHECK(description.find("50097") != std::string::npos);
  CHECK_MESSAGE(lower(description).find("block") != std::string::npos, description);
  CHECK_MESSAGE(lower(description).find("device") != std::string::npos, description);
  CHECK(ev["retry_in"].IsNull());
  CHECK(json_str(ev, "policy") == "conditional_access");
  check_signed_out_state(s.wait_state("kitchen", "signed_out", since).json(), "blocked");
  check_code_cleared(s, since);
}

TEST_CASE("sign-in: an error /devicecode sends with HTTP 200 is an error") {
  Scenario s;
  wait_started(s);
  s.simulator.config(R"({"errors_on_200":true})");
  s.simulator.fail(
      R"({"endpoint":"devicecode","count":1,"status":200,"error":"invalid_client","error_codes":[700016],)"
      R"("description":"Application with identifier 'x' was not found in the directory 'contoso'."})");
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(ev, "error") == "invalid_client");
  CHECK(json_str(ev, "description").find("AADSTS700016") != std::string::npos);
  CHECK(ev["retry_in"].IsNull());
  auto state =
      s.display
          .wait_for_json(
              kState, [](const rapidjson::Value& v) { return json_str(v, "reason") == "error"; },
              10s, since)
          .json();
  check_signed_out_state(state, "error");
  for (const auto& m : messages_since(s, kCode, since)) CHECK(m.payload.empty());
  CHECK(s.simulator.counters().devicecode == 1);  // terminal: not retried
}

TEST_CASE("sign-in: Microsoft's own HTTP 200 error for a bad tenant is an error") {
  ScenarioOptions options;
  options.accounts = kitchen_account("  tenant: notadomain\n");
  options.simulator_args = {"--interval", "1", "--log"};
  Scenario s(options);
  wait_started(s);
  s.simulator.config(R"({"errors_on_200":true})");
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(ev, "error") == "invalid_request");
  CHECK(json_str(ev, "description").find("AADSTS900023") != std::string::npos);
  CHECK(ev["retry_in"].IsNull());
  s.display.wait_for_json(
      kState, [](const rapidjson::Value& v) { return json_str(v, "reason") == "error"; }, 10s,
      since);
  // The simulator did answer with 200.
  CHECK(s.simulator.log_text().find("/notadomain/oauth2/v2.0/devicecode 200") != std::string::npos);
  CHECK(s.simulator.counters().devicecode == 1);
}

// --- transient failures -------------------------------------------------------------------------

TEST_CASE("sign-in: a 503 while polling is retried and the sign-in still completes" *
          doctest::test_suite("faults")) {
  Scenario s;
  wait_started(s);
  check_transient_poll_failure(s, R"({"endpoint":"token","count":1,"status":503})", "http_503");
}

TEST_CASE("sign-in: temporarily_unavailable while polling is retried" *
          doctest::test_suite("faults")) {
  Scenario s;
  wait_started(s);
  check_transient_poll_failure(
      s,
      R"({"endpoint":"token","count":1,"status":400,"error":"temporarily_unavailable",)"
      R"("error_codes":[50196],"description":"The server is temporarily unavailable."})",
      "temporarily_unavailable");
}

TEST_CASE("sign-in: a 200 whose body is not JSON while polling is retried" *
          doctest::test_suite("faults")) {
  Scenario s;
  wait_started(s);
  check_transient_poll_failure(
      s, R"({"endpoint":"token","count":1,"status":200,"body":"<html>proxy</html>"})",
      "invalid_response");
}

TEST_CASE("sign-in: a 429 while polling honours Retry-After" * doctest::test_suite("faults")) {
  Scenario s;
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"token","count":1,"status":429,"retry_after":"3"})");
  const auto since = s.display.mark();
  const auto user_code = s.login();
  auto auth_error = s.wait_event("kitchen", "auth_error", since);
  auto ev = auth_error.json();
  CHECK(json_str(ev, "error") == "http_429");
  REQUIRE(ev["retry_in"].IsInt());
  CHECK(ev["retry_in"].GetInt() >= 3);
  CHECK(ev["retry_in"].GetInt() <= 4);
  const long polls = sim_polls(s.simulator, user_code);
  CHECK(polls == 1);
  // The next poll waits the 3 s the platform asked for.
  REQUIRE(poll_until([&] { return sim_polls(s.simulator, user_code) > polls; }, 10s));
  CHECK(seconds_between(auth_error.arrived, SteadyClock::now()) >= 2.5);
  const auto before_approve = s.display.mark();
  s.simulator.approve(user_code);
  s.wait_state("kitchen", "signed_in", before_approve);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  check_protocol_followed(s);
}

TEST_CASE("sign-in: a poll that outlasts identity.timeout is retried" *
          doctest::test_suite("faults")) {
  ScenarioOptions options;
  options.identity_extra = "timeout: 2s\n";
  Scenario s(options);
  wait_started(s);
  // The first poll is answered after 2.6 s (normally: authorization_pending).
  check_transient_poll_failure(s, R"({"endpoint":"token","count":1,"delay_ms":2600})", "timeout");
}

TEST_CASE(
    "sign-in: a 503 from /devicecode gets an error reply with retry_in and the agent retries" *
    doctest::test_suite("faults")) {
  Scenario s;
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"status":503,"retry_after":"1"})");
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  REQUIRE(reply.HasMember("retry_in"));
  REQUIRE(reply["retry_in"].IsInt());
  CHECK(reply["retry_in"].GetInt() >= 1);
  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(ev, "error") == "http_503");
  REQUIRE(ev["retry_in"].IsInt());
  CHECK(ev["retry_in"].GetInt() >= 1);
  // S stays signed_out while the device-code request is retried, then the code is out.
  auto code = wait_object(s, kCode, since, 20s);
  for (const auto& m : messages_since(s, kState, since)) {
    if (m.index < code.index) CHECK(json_str(m.json(), "state") == "signed_out");
  }
  s.wait_state("kitchen", "pending", since);
  CHECK(s.simulator.counters().devicecode == 2);
  const auto before_approve = s.display.mark();
  s.simulator.approve(json_str(code.json(), "user_code"));
  s.wait_state("kitchen", "signed_in", before_approve);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  check_protocol_followed(s);
}

// --- cancel and login while pending -----------------------------------------------------------

TEST_CASE("sign-in: cancel ends a pending sign-in") {
  Scenario s;
  wait_started(s);
  const auto user_code = s.login();
  const auto since = s.display.mark();
  auto reply = s.display.request("cancel", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  check_signed_out_state(reply["data"], "cancelled");

  auto cancelled = s.wait_event("kitchen", "cancelled", since);
  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(cancelled.index < signed_out.index);
  CHECK(json_str(signed_out.json(), "reason") == "cancelled");
  check_signed_out_state(s.wait_state("kitchen", "signed_out", since).json(), "cancelled");
  check_code_cleared(s, since);
  check_signed_out_state(retained_state(s), "cancelled");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"cancelled", "signed_out"});
  const auto codes = sim_codes(s.simulator);
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].user_code == user_code);
  CHECK(codes[0].state == "pending");  // never redeemed
  check_protocol_followed(s);
}

TEST_CASE("sign-in: cancel with nothing pending gets an error reply and changes nothing") {
  Scenario s;
  wait_started(s);
  s.wait_state("kitchen", "signed_out");
  auto since = s.display.mark();
  auto reply = s.display.request("cancel", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  CHECK_FALSE(reply.HasMember("retry_in"));
  CHECK(messages_since(s, kState, since).empty());
  CHECK(events_since(s, "kitchen", since).empty());

  // Signed in: same.
  s.sign_in();
  s.wait_event("kitchen", "signed_in");
  since = s.display.mark();
  reply = s.display.request("cancel", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK(messages_since(s, kState, since).empty());
  CHECK(events_since(s, "kitchen", since).empty());
  CHECK(json_str(status_of(s), "state") == "signed_in");
}

TEST_CASE("sign-in: cancel during the device-code request ends the sign-in") {
  Scenario s;
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"delay_ms":1500})");
  const auto since = s.display.mark();
  s.display.publish("graph2mqtt/bridge/request/login",
                    R"({"account":"kitchen","transaction":"l1"})");
  REQUIRE(poll_until([&] { return s.simulator.counters().devicecode == 1; }, 5s));
  // S stays signed_out while the device-code request is in flight.
  CHECK(json_str(status_of(s), "state") == "signed_out");
  auto reply = s.display.request("cancel", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  auto login_reply = s.display.wait_for_json(
      "graph2mqtt/bridge/response/login",
      [](const rapidjson::Value& v) { return json_str(v, "transaction") == "l1"; }, 10s, since);
  CHECK(json_str(login_reply.json(), "status") == "error");
  auto state =
      s.display
          .wait_for_json(
              kState,
              [](const rapidjson::Value& v) { return json_str(v, "reason") == "cancelled"; }, 10s,
              since)
          .json();
  check_signed_out_state(state, "cancelled");
  s.wait_event("kitchen", "cancelled", since);
}

TEST_CASE("sign-in: login while pending returns the same code without a new device-code request") {
  Scenario s;
  wait_started(s);
  const auto user_code = s.login();
  const auto since = s.display.mark();
  for (const char* request :
       {R"({"account":"kitchen"})", R"({"account":"kitchen","force":true})"}) {
    auto reply = s.display.request("login", request);
    REQUIRE(json_str(reply, "status") == "ok");
    CHECK(json_str(reply["data"], "state") == "pending");
    REQUIRE(reply["data"]["code"].IsObject());
    CHECK(json_str(reply["data"]["code"], "user_code") == user_code);
  }
  CHECK(s.simulator.counters().devicecode == 1);
  CHECK(events_since(s, "kitchen", since).empty());  // no second code_issued
  for (const auto& m : messages_since(s, kCode, since)) {
    CHECK(json_str(m.json(), "user_code") == user_code);
  }
}

TEST_CASE("sign-in: two logins during the device-code request get the same outcome") {
  Scenario s;
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"delay_ms":1000})");
  const auto since = s.display.mark();
  s.display.publish("graph2mqtt/bridge/request/login",
                    R"({"account":"kitchen","transaction":"a"})");
  s.display.publish("graph2mqtt/bridge/request/login",
                    R"({"account":"kitchen","transaction":"b"})");
  std::vector<std::string> codes;
  for (const char* transaction : {"a", "b"}) {
    auto reply = s.display
                     .wait_for_json(
                         "graph2mqtt/bridge/response/login",
                         [&](const rapidjson::Value& v) {
                           return json_str(v, "transaction") == transaction;
                         },
                         10s, since)
                     .json();
    REQUIRE(json_str(reply, "status") == "ok");
    codes.push_back(json_str(reply["data"]["code"], "user_code"));
  }
  CHECK(codes[0] == codes[1]);
  CHECK_FALSE(codes[0].empty());
  CHECK(s.simulator.counters().devicecode == 1);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"code_issued"});
}

TEST_CASE("sign-in: a second login-started sign-in within 10 s is refused with retry_in") {
  Scenario s;
  wait_started(s);
  s.login();
  REQUIRE(json_str(s.display.request("cancel", R"({"account":"kitchen"})"), "status") == "ok");
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  REQUIRE(reply.HasMember("retry_in"));
  REQUIRE(reply["retry_in"].IsInt());
  CHECK(reply["retry_in"].GetInt() >= 1);
  CHECK(reply["retry_in"].GetInt() <= 10);
  CHECK(s.simulator.counters().devicecode == 1);
  CHECK(messages_since(s, kState, since).empty());
  CHECK(events_since(s, "kitchen", since).empty());
}

// --- forced re-sign-in --------------------------------------------------------------------------

TEST_CASE("sign-in: login with force keeps the old user until the new sign-in succeeds") {
  Scenario s;
  wait_started(s);
  sign_in_and_restart(s);  // signed in, and no login counted yet
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen","force":true})");
  REQUIRE(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"], "state") == "pending");
  CHECK(json_str(reply["data"]["user"], "name") == "Adele Vance");
  REQUIRE(reply["data"]["code"].IsObject());
  const auto user_code = json_str(reply["data"]["code"], "user_code");

  auto pending = s.wait_state("kitchen", "pending", since).json();
  CHECK(json_str(pending["user"], "name") == "Adele Vance");
  CHECK(json_str(pending["code"], "user_code") == user_code);
  CHECK(pending["scopes"].IsArray());
  CHECK_FALSE(pending["scopes"].Empty());
  wait_object(s, kCode, since);
  // The old tokens stay in use meanwhile.
  auto fetched = s.display.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  CHECK(json_str(fetched, "status") == "ok");
  CHECK(fetched["data"]["status"].GetInt() == 200);

  const auto before_approve = s.display.mark();
  s.simulator.approve(user_code, "Megan Bowen", "megan@contoso.com");
  auto signed_in = s.wait_event("kitchen", "signed_in", before_approve).json();
  CHECK(json_str(signed_in["user"], "name") == "Megan Bowen");
  auto state = s.wait_state("kitchen", "signed_in", before_approve).json();
  CHECK(json_str(state["user"], "username") == "megan@contoso.com");
  check_code_cleared(s, before_approve);
  auto me = s.display.wait_for_json(
      "graph2mqtt/kitchen/graph/me",
      [](const rapidjson::Value& v) { return json_str(v, "displayName") == "Megan Bowen"; }, 10s,
      before_approve);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  for (const auto& m : messages_since(s, kState, since)) {
    CHECK(json_str(m.json(), "state") != "signed_out");
  }

  // The new tokens are the ones stored.
  REQUIRE(s.agent->stop() == 0);
  const auto before_restart = s.display.mark();
  s.agent->start();
  auto restored = s.wait_state("kitchen", "signed_in", before_restart).json();
  CHECK(json_str(restored["user"], "name") == "Megan Bowen");
  CHECK(s.simulator.counters().devicecode == 2);
  check_protocol_followed(s);
}

TEST_CASE("sign-in: a declined forced re-sign-in returns to signed_in without signed_out") {
  Scenario s;
  wait_started(s);
  sign_in_and_restart(s);
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen","force":true})");
  REQUIRE(json_str(reply, "status") == "ok");
  const auto user_code = json_str(reply["data"]["code"], "user_code");
  s.wait_state("kitchen", "pending", since);

  const auto before_decline = s.display.mark();
  s.simulator.decline(user_code);
  s.wait_event("kitchen", "declined", before_decline);
  auto state = s.wait_state("kitchen", "signed_in", before_decline).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  CHECK(state["reason"].IsNull());
  CHECK(state["code"].IsNull());
  check_code_cleared(s, before_decline);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"code_issued", "declined"});
  // The old tokens still work, and are still on disk.
  auto fetched = s.display.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  CHECK(json_str(fetched, "status") == "ok");
  CHECK(fetched["data"]["status"].GetInt() == 200);
  CHECK(has_token_file(*s.agent));
  check_protocol_followed(s);
}

TEST_CASE("sign-in: a cancelled forced re-sign-in returns to signed_in without signed_out") {
  Scenario s;
  wait_started(s);
  sign_in_and_restart(s);
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen","force":true})");
  REQUIRE(json_str(reply, "status") == "ok");
  s.wait_state("kitchen", "pending", since);
  auto cancelled = s.display.request("cancel", R"({"account":"kitchen"})");
  REQUIRE(json_str(cancelled, "status") == "ok");
  CHECK(json_str(cancelled["data"], "state") == "signed_in");
  auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  check_code_cleared(s, since);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"code_issued", "cancelled"});
}

// --- protocol v1, sign_in: auto ---------------------------------------------------------------

TEST_CASE("sign-in: the legacy v1 protocol signs in with a resource") {
  ScenarioOptions options;
  options.identity_extra = "protocol: v1\n";
  options.accounts = std::string("kitchen:\n") + "  client_id: " + kClientId + "\n" +
                     "  resource: https://graph.microsoft.com\n" + "  resources:\n" +
                     "    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n" +
                     "    presence: { path: /me/presence, every: 30s }\n";
  Scenario s(options);
  wait_started(s);
  const auto since = s.display.mark();
  const auto user_code = s.login();
  auto code = wait_object(s, kCode, since).json();
  CHECK(json_str(code, "verification_uri") == "https://microsoft.com/devicelogin");  // from _url
  CHECK(code["interval"].GetInt() == 1);  // "interval":"1"
  s.simulator.approve(user_code, "Adele Vance", "adele@contoso.com");
  auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  const auto expiry = parse_utc(json_str(state, "expires_at"));
  REQUIRE(expiry.has_value());
  CHECK(*expiry > now_utc() + 3500);
  wait_resources(s, since);
  const auto codes = sim_codes(s.simulator);
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].v1);
  CHECK(codes[0].state == "redeemed");

  // A v1 refresh works too.
  const auto before_refresh = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", before_refresh);
  check_protocol_followed(s);
}

TEST_CASE("sign-in: sign_in auto starts a sign-in at start") {
  ScenarioOptions options;
  options.accounts = kitchen_account("  sign_in: auto\n");
  Scenario s(options);
  wait_started(s);
  auto pending = s.wait_state("kitchen", "pending").json();
  REQUIRE(pending["code"].IsObject());
  const auto user_code = json_str(pending["code"], "user_code");
  auto code = wait_object(s, kCode, 0);
  CHECK(json_str(code.json(), "user_code") == user_code);
  s.wait_event("kitchen", "code_issued");
  CHECK(s.simulator.counters().devicecode == 1);

  const auto since = s.display.mark();
  s.simulator.approve(user_code);
  s.wait_event("kitchen", "signed_in", since);
  s.wait_state("kitchen", "signed_in", since);
  wait_resources(s, since);
  check_protocol_followed(s);
}
