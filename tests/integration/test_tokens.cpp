// The token lifecycle (docs/mqtt-api.md "Tokens", §1 events and graph/R, §2 refresh / logout):
// refresh on command, on a Graph 401 and ahead of expiry; rotation; rejection; the token file on
// disk.
#include <doctest/doctest.h>

#include "scenario_commands.h"
#include "scenario_extra.h"

using namespace g2m::test;

namespace {

const char* const kCode = "graph2mqtt/kitchen/auth/code";
const char* const kState = "graph2mqtt/kitchen/auth/state";

// Signs in and waits until every resource has been published once.
void sign_in_with_resources(Scenario& s) {
  wait_started(s);
  const auto since = s.display.mark();
  s.sign_in();
  wait_resources(s, since);
}

// Every graph/R of the account was cleared after `since`, and a display connecting now gets
// nothing on them.
void check_graph_cleared(Scenario& s, std::size_t since) {
  for (const auto& r : kitchen_resources()) {
    const auto topic = s.topic("kitchen", "graph/" + r);
    wait_cleared(s, topic, since);
    CHECK_MESSAGE(s.display.retained_value(topic) == std::nullopt, topic);
  }
}

void check_signed_out(const rapidjson::Value& state, const std::string& reason) {
  CHECK(json_str(state, "state") == "signed_out");
  CHECK(json_str(state, "reason") == reason);
  CHECK(state["user"].IsNull());
  CHECK(state["expires_at"].IsNull());
  CHECK(state["code"].IsNull());
  REQUIRE(state["scopes"].IsArray());
  CHECK(state["scopes"].Empty());
}

// The refresh token was refused (failure injected or revoked before calling this): the refresh
// command fails, auth_error (retry_in null) then signed_out with `reason`, the Graph topics are
// cleared and the token file is gone.
void check_tokens_lost(Scenario& s, const std::string& error, const std::string& aadsts,
                       const std::string& reason) {
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  CHECK_FALSE(reply.HasMember("retry_in"));

  auto auth_error = s.wait_event("kitchen", "auth_error", since);
  auto ev = auth_error.json();
  CHECK(json_str(ev, "error") == error);
  CHECK(json_str(ev, "description").find(aadsts) != std::string::npos);
  CHECK(json_str(ev, "description").find('\n') == std::string::npos);
  REQUIRE(ev.HasMember("retry_in"));
  CHECK(ev["retry_in"].IsNull());
  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(json_str(signed_out.json(), "reason") == reason);
  CHECK(auth_error.index < signed_out.index);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"auth_error", "signed_out"});

  check_signed_out(s.wait_state("kitchen", "signed_out", since).json(), reason);
  const auto state = retained_state(s);
  check_signed_out(state, reason);
  // auth/state says why, for a display (docs/mqtt-api.md auth/state `error`).
  REQUIRE(state["error"].IsObject());
  CHECK(json_str(state["error"], "error") == error);
  CHECK(json_str(state["error"], "description") == json_str(ev, "description"));
  CHECK(state["error"]["policy"].IsNull());
  check_graph_cleared(s, since);
  CHECK_FALSE(has_token_file(*s.agent));
  CHECK(json_str(status_of(s), "state") == "signed_out");
  // Nothing to fall back on: a restart is still signed out.
  REQUIRE(s.agent->stop() == 0);
  const auto before_restart = s.display.mark();
  s.agent->start();
  s.wait_state("kitchen", "signed_out", before_restart);
  CHECK(s.simulator.counters().devicecode == 1);
}

}  // namespace

// --- refresh ------------------------------------------------------------------------------------

TEST_CASE("tokens: the refresh command redeems the refresh token and publishes the new expiry") {
  Scenario s;
  sign_in_with_resources(s);
  const auto before = retained_state(s);
  const auto old_expiry = parse_utc(json_str(before, "expires_at"));
  REQUIRE(old_expiry.has_value());

  s.simulator.config(R"({"token_lifetime":7200})");  // the new expiry is surely different
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"], "state") == "signed_in");

  auto ev = s.wait_event("kitchen", "token_refreshed", since).json();
  const auto new_expiry = parse_utc(json_str(ev, "expires_at"));
  REQUIRE(new_expiry.has_value());
  CHECK(*new_expiry > *old_expiry + 3000);
  CHECK(*new_expiry > now_utc() + 7100);
  CHECK(*new_expiry <= now_utc() + 7201);
  CHECK(json_str(reply["data"], "expires_at") == json_str(ev, "expires_at"));

  auto state = s.display
                   .wait_for_json(
                       kState,
                       [&](const rapidjson::Value& v) {
                         return json_str(v, "expires_at") == json_str(ev, "expires_at");
                       },
                       10s, since)
                   .json();
  CHECK(json_str(state, "state") == "signed_in");
  CHECK(json_str(state, "since") == json_str(before, "since"));  // S did not change
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"token_refreshed"});

  const auto counters = s.simulator.counters();
  CHECK(counters.refresh == 1);
  CHECK(counters.rotated_token_reuse == 0);
  check_no_secrets(s);
}

TEST_CASE("tokens: the refresh command while signed out gets an error reply") {
  Scenario s;
  wait_started(s);
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(json_str(reply, "error").empty());
  CHECK(messages_since(s, kState, since).empty());
  CHECK(s.simulator.counters().refresh == 0);
}

TEST_CASE("tokens: an access token expired mid-run is refreshed on the Graph 401, then fetched") {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.expire_tokens();
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  REQUIRE(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"], "resource") == "presence");
  REQUIRE(reply["data"]["status"].IsInt());
  CHECK(reply["data"]["status"].GetInt() == 200);

  s.wait_event("kitchen", "token_refreshed", since);
  auto presence = wait_object(s, "graph2mqtt/kitchen/graph/presence", since).json();
  CHECK(json_str(presence, "availability") == "Available");
  const auto events = events_since(s, "kitchen", since);
  CHECK_FALSE(contains(events, "graph_error"));
  CHECK_FALSE(contains(events, "signed_out"));
  CHECK(sim_counter(s.simulator, "unauthorized_graph") >= 1);
  const auto counters = s.simulator.counters();
  CHECK(counters.refresh == 1);
  CHECK(counters.rotated_token_reuse == 0);
  CHECK(json_str(status_of(s), "state") == "signed_in");
}

TEST_CASE("tokens: a short-lived access token is refreshed ahead of its expiry without a command") {
  // 12 s tokens: refreshed at half their lifetime (6 s) minus a spread (at most a quarter).
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--token-lifetime", "12"};
  Scenario s(options);
  wait_started(s);
  const auto since = s.display.mark();
  s.sign_in();
  auto signed_in = s.wait_event("kitchen", "signed_in", since);
  const auto first_state = retained_state(s);

  auto first = s.wait_event("kitchen", "token_refreshed", since, 15s);
  const double after = seconds_between(signed_in.arrived, first.arrived);
  CHECK_MESSAGE(after >= 2.0, "refreshed " << after << " s after the sign-in");
  CHECK_MESSAGE(after <= 8.0, "refreshed " << after << " s after the sign-in");
  const auto expiry = parse_utc(json_str(first.json(), "expires_at"));
  REQUIRE(expiry.has_value());
  CHECK(*expiry > *parse_utc(json_str(first_state, "expires_at")));

  // And again, ahead of the new expiry.
  auto second = s.wait_event("kitchen", "token_refreshed", first.index + 1, 15s);
  const double between = seconds_between(first.arrived, second.arrived);
  CHECK_MESSAGE(between >= 2.0, "refreshed again " << between << " s later");
  CHECK_MESSAGE(between <= 8.0, "refreshed again " << between << " s later");

  CHECK(json_str(status_of(s), "state") == "signed_in");
  CHECK(messages_since(s, "graph2mqtt/bridge/request/refresh", since).empty());
  const auto counters = s.simulator.counters();
  CHECK(counters.refresh == 2);
  CHECK(counters.rotated_token_reuse == 0);
}

TEST_CASE("tokens: strict rotation over several refreshes never reuses a rotated refresh token") {
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--strict-rotation"};
  Scenario s(options);
  sign_in_with_resources(s);
  // `refresh` commands are limited to one per 10 s (docs/mqtt-api.md "Commands"): the first is one,
  // the next two are Graph 401s (an expired access token), which refresh without limit.
  for (int i = 0; i < 3; ++i) {
    const auto since = s.display.mark();
    if (i > 0) s.simulator.expire_tokens();
    // (a resource refresh is limited to one per second: asked again when the reply says so)
    auto reply = request_when_allowed(
        s, "refresh",
        i == 0 ? R"({"account":"kitchen"})" : R"({"account":"kitchen","resource":"me"})");
    REQUIRE_MESSAGE(json_str(reply, "status") == "ok", json_str(reply, "error"));
    s.wait_event("kitchen", "token_refreshed", since);
  }
  auto fetched = request_when_allowed(s, "refresh", R"({"account":"kitchen","resource":"me"})");
  CHECK(json_str(fetched, "status") == "ok");
  CHECK(fetched["data"]["status"].GetInt() == 200);

  // The newest refresh token is the one on disk: after a restart it still works.
  REQUIRE(s.agent->stop() == 0);
  const auto before_restart = s.display.mark();
  s.agent->start();
  s.wait_state("kitchen", "signed_in", before_restart);
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", since);
  CHECK_FALSE(contains(events_since(s, "kitchen", before_restart), "auth_error"));

  const auto counters = s.simulator.counters();
  CHECK(counters.rotated_token_reuse == 0);
  CHECK(counters.refresh == 4);
  CHECK(json_str(status_of(s), "state") == "signed_in");
}

// --- refresh refused ----------------------------------------------------------------------------

TEST_CASE("tokens: a revoked refresh token signs the account out with refresh_rejected") {
  Scenario s;
  sign_in_with_resources(s);
  REQUIRE(has_token_file(*s.agent));
  REQUIRE(s.simulator.post("/_sim/revoke_refresh_tokens").status == 200);
  check_tokens_lost(s, "invalid_grant", "AADSTS70008", "refresh_rejected");
}

TEST_CASE("tokens: invalid_grant AADSTS700082 on refresh signs the account out") {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.fail(
      R"({"endpoint":"refresh","count":1,"error":"invalid_grant","error_codes":[700082],)"
      R"("description":"The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00."})");
  check_tokens_lost(s, "invalid_grant", "AADSTS700082", "refresh_rejected");
}

TEST_CASE("tokens: interaction_required on refresh signs the account out with refresh_rejected") {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.fail(
      R"({"endpoint":"refresh","count":1,"error":"interaction_required","error_codes":[50076],)"
      R"("description":"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource."})");
  check_tokens_lost(s, "interaction_required", "AADSTS50076", "refresh_rejected");
}

TEST_CASE("tokens: consent_required on refresh signs the account out with refresh_rejected") {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.fail(
      R"({"endpoint":"refresh","count":1,"error":"consent_required","error_codes":[65001],)"
      R"("description":"The user or administrator has not consented to use the application."})");
  check_tokens_lost(s, "consent_required", "AADSTS65001", "refresh_rejected");
}

TEST_CASE("tokens: another 4xx on refresh signs the account out with reason error") {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.fail(
      R"({"endpoint":"refresh","count":1,"status":401,"error":"invalid_client","error_codes":[7000222],)"
      R"("description":"The provided client secret keys for app 'x' are expired."})");
  check_tokens_lost(s, "invalid_client", "AADSTS7000222", "error");
}

TEST_CASE("tokens: a 503 on refresh keeps the tokens and retries" * doctest::test_suite("faults")) {
  Scenario s;
  sign_in_with_resources(s);
  s.simulator.fail(R"({"endpoint":"refresh","count":1,"status":503,"retry_after":"1"})");
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  REQUIRE(reply.HasMember("retry_in"));
  CHECK(reply["retry_in"].IsInt());
  auto ev = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(ev, "error") == "http_503");
  REQUIRE(ev["retry_in"].IsInt());
  CHECK(ev["retry_in"].GetInt() >= 1);
  // The tokens are kept (memory and disk) and the agent tries again by itself.
  CHECK(json_str(status_of(s), "state") == "signed_in");
  CHECK(has_token_file(*s.agent));
  s.wait_event("kitchen", "token_refreshed", since, 20s);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  CHECK(messages_since(s, kState, since).size() >= 1);
  for (const auto& m : messages_since(s, kState, since)) {
    CHECK(json_str(m.json(), "state") == "signed_in");
  }
  CHECK(s.simulator.counters().refresh == 2);
}

TEST_CASE("tokens: with sign_in auto a rejected refresh starts a new sign-in") {
  ScenarioOptions options;
  options.accounts = kitchen_account("  sign_in: auto\n");
  Scenario s(options);
  auto first = s.wait_state("kitchen", "pending").json();
  const auto first_code = json_str(first["code"], "user_code");
  auto since = s.display.mark();
  s.simulator.approve(first_code);
  s.wait_state("kitchen", "signed_in", since);
  wait_resources(s, since);

  REQUIRE(s.simulator.post("/_sim/revoke_refresh_tokens").status == 200);
  since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  auto signed_out = s.wait_event("kitchen", "signed_out", since);
  CHECK(json_str(signed_out.json(), "reason") == "refresh_rejected");
  check_graph_cleared(s, since);
  // A new code is out at once, without a command.
  auto pending = s.wait_state("kitchen", "pending", since).json();
  REQUIRE(pending["code"].IsObject());
  const auto second_code = json_str(pending["code"], "user_code");
  CHECK(second_code != first_code);
  auto issued = s.wait_event("kitchen", "code_issued", since);
  CHECK(signed_out.index < issued.index);
  CHECK(s.simulator.counters().devicecode == 2);

  const auto before_approve = s.display.mark();
  s.simulator.approve(second_code);
  s.wait_state("kitchen", "signed_in", before_approve);
  CHECK(has_token_file(*s.agent));
}

TEST_CASE("tokens: a restart with an expired access token is signed in and refreshes at once") {
  Scenario s;
  wait_started(s);
  s.simulator.config(R"({"token_lifetime":3})");
  s.sign_in();
  REQUIRE(s.agent->stop() == 0);
  const auto expiry = parse_utc(json_str(retained_state(s), "expires_at"));
  REQUIRE(expiry.has_value());
  // The stored access token expires while the agent is away.
  REQUIRE(poll_until([&] { return now_utc() > *expiry; }, 10s));
  s.simulator.config(R"({"token_lifetime":3600})");
  REQUIRE(s.simulator.post("/_sim/counters/reset").status == 200);

  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  auto refreshed = s.wait_event("kitchen", "token_refreshed", since).json();
  const auto new_expiry = parse_utc(json_str(refreshed, "expires_at"));
  REQUIRE(new_expiry.has_value());
  CHECK(*new_expiry > now_utc() + 3500);
  wait_resources(s, since);
  for (const auto& m : messages_since(s, kState, since)) {
    CHECK(json_str(m.json(), "state") == "signed_in");
  }
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_in"));
  const auto counters = s.simulator.counters();
  CHECK(counters.devicecode == 0);
  CHECK(counters.refresh >= 1);
  // The expired access token was not sent to Graph first.
  CHECK(sim_counter(s.simulator, "unauthorized_graph") == 0);
}

// --- the token file -----------------------------------------------------------------------------

TEST_CASE("tokens: the token file is written 0600 in a 0700 folder") {
  Scenario s;
  sign_in_with_resources(s);
  const auto file = the_token_file(*s.agent);
  CHECK(mode_of(file) == 0600U);
  CHECK(mode_of(s.agent->storage_dir()) == 0700U);
  // No secret lies around elsewhere in the folder (temporary files are renamed away).
  for (const auto& entry : std::filesystem::directory_iterator(s.agent->storage_dir())) {
    const auto name = entry.path().filename().string();
    CHECK_MESSAGE((entry.path() == file || name.ends_with(".lock")), name);
  }

  // Rewritten by a refresh: still 0600.
  const auto before = read_file(file);
  const auto since = s.display.mark();
  REQUIRE(json_str(s.display.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", since);
  CHECK(read_file(the_token_file(*s.agent)) != before);
  CHECK(mode_of(the_token_file(*s.agent)) == 0600U);

  // A folder made wider by hand is tightened to 0700 at the next start, with a warning.
  REQUIRE(s.agent->stop() == 0);
  std::filesystem::permissions(s.agent->storage_dir(), std::filesystem::perms(0755));
  const auto log_before = s.agent->log_text().size();
  const auto before_restart = s.display.mark();
  s.agent->start();
  s.wait_state("kitchen", "signed_in", before_restart);
  CHECK(mode_of(s.agent->storage_dir()) == 0700U);
  CHECK(mode_of(the_token_file(*s.agent)) == 0600U);
  const auto log = s.agent->log_text().substr(log_before);
  CHECK_MESSAGE(log.find("0700") != std::string::npos, log);
}

TEST_CASE("tokens: logout forgets the tokens and clears the display's topics") {
  Scenario s;
  sign_in_with_resources(s);
  REQUIRE(has_token_file(*s.agent));
  const auto since = s.display.mark();
  auto reply = s.display.request("logout", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  check_signed_out(reply["data"], "logout");

  auto ev = s.wait_event("kitchen", "signed_out", since).json();
  CHECK(json_str(ev, "reason") == "logout");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"signed_out"});
  check_signed_out(s.wait_state("kitchen", "signed_out", since).json(), "logout");
  check_graph_cleared(s, since);
  CHECK(s.display.retained_value(kCode) == std::nullopt);
  check_signed_out(retained_state(s), "logout");
  CHECK_FALSE(has_token_file(*s.agent));

  auto refresh = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(refresh, "status") == "error");
  CHECK(s.simulator.counters().refresh == 0);
  // Nothing comes back after a restart.
  REQUIRE(s.agent->stop() == 0);
  const auto before_restart = s.display.mark();
  s.agent->start();
  s.wait_state("kitchen", "signed_out", before_restart);
}

TEST_CASE("tokens: logout during a pending sign-in ends it without a cancelled event") {
  Scenario s;
  wait_started(s);
  s.login();
  const auto since = s.display.mark();
  auto reply = s.display.request("logout", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  check_signed_out(reply["data"], "logout");
  wait_cleared(s, kCode, since);
  check_signed_out(s.wait_state("kitchen", "signed_out", since).json(), "logout");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"signed_out"});
  CHECK(s.display.retained_value(kCode) == std::nullopt);
}

TEST_CASE("tokens: logout while signed out is ok and says logout") {
  Scenario s;
  wait_started(s);
  const auto since = s.display.mark();
  auto reply = s.display.request("logout", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  check_signed_out(reply["data"], "logout");
  check_signed_out(
      s.display
          .wait_for_json(
              kState, [](const rapidjson::Value& v) { return json_str(v, "reason") == "logout"; },
              10s, since)
          .json(),
      "logout");
}

TEST_CASE("tokens: a kill -9 right after a refresh command leaves a usable token file" *
          doctest::test_suite("faults")) {
  Scenario s;
  sign_in_with_resources(s);
  for (long round = 1; round <= 3; ++round) {
    CAPTURE(round);
    s.display.publish("graph2mqtt/bridge/request/refresh", R"({"account":"kitchen"})");
    // Killed while the refresh answer is on its way (or being written).
    REQUIRE(poll_until([&] { return s.simulator.counters().refresh >= round; }, 5s));
    s.agent->kill9();
    const auto text = read_file(the_token_file(*s.agent));
    CHECK_FALSE(try_parse_json(text).HasParseError());
    CHECK(mode_of(the_token_file(*s.agent)) == 0600U);

    const auto since = s.display.mark();
    s.agent->start();
    s.wait_online(since);
    auto state = s.wait_state("kitchen", "signed_in", since).json();
    CHECK(json_str(state["user"], "name") == "Adele Vance");
    wait_resources(s, since);
    CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  }
  // The stored refresh token still works.
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", since);
  CHECK(s.simulator.counters().devicecode == 1);
}

TEST_CASE("tokens: a corrupt token file at start counts as signed out and is reported" *
          doctest::test_suite("faults")) {
  Scenario s;
  sign_in_with_resources(s);
  const auto file = the_token_file(*s.agent);
  REQUIRE(s.agent->stop() == 0);
  const auto good = read_file(file);
  write_file(file, good.substr(0, good.size() / 2));  // truncated mid-way
  const auto log_before = s.agent->log_text().size();

  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  auto state = s.wait_state("kitchen", "signed_out", since).json();
  CHECK(state["user"].IsNull());
  CHECK(state["code"].IsNull());
  // Nothing stale from the earlier run survives.
  check_graph_cleared(s, since);
  wait_cleared(s, kCode, since);
  CHECK(s.agent->running());
  const auto log = s.agent->log_text().substr(log_before);
  CHECK_MESSAGE(log.find("corrupt") != std::string::npos, log);
  CHECK_MESSAGE(log.find("kitchen") != std::string::npos, log);
  // The tokens of the damaged file are not logged.
  const auto doc = parse_json(good);
  for (const char* key : {"access_token", "refresh_token"}) {
    const auto secret = json_str(doc, key);
    if (!secret.empty()) CHECK(log.find(secret) == std::string::npos);
  }

  // A new sign-in replaces the file.
  const auto before_login = s.display.mark();
  s.sign_in();
  wait_resources(s, before_login);
  CHECK_FALSE(try_parse_json(read_file(the_token_file(*s.agent))).HasParseError());
}
