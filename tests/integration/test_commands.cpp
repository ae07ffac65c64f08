// The MQTT command contract (docs/mqtt-api.md "Commands"): every action with its reply shape, the
// transaction rules, the account rules with one and with two accounts, and the per-account rate
// limits.
#include <doctest/doctest.h>

#include "scenario_commands.h"

using namespace g2m::test;

namespace {

// The state object of the retained B/A/auth/state.
rapidjson::Document retained_state(Scenario& s, const std::string& account = "kitchen") {
  auto text = s.display.retained_value(s.topic(account, "auth/state"));
  REQUIRE(text.has_value());
  return parse_json(*text);
}

}  // namespace

TEST_CASE("commands: status with and without an account, and the transaction rules") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");

  // With `account`: one state object, equal to the retained auth/state; a string transaction.
  {
    auto reply = s.display.request("status", R"({"account":"kitchen","transaction":"st-1"})");
    CHECK(is_ok_reply(reply));
    CHECK(transaction_of(reply) == R"("st-1")");
    REQUIRE(is_state_object(reply["data"]));
    CHECK(json_str(reply["data"], "state") == "signed_out");
    CHECK(reply["data"] == retained_state(s));
  }
  // Without `account`, even with one account: {"accounts":{A:state}}; a number transaction.
  {
    const auto since = s.display.mark();
    s.display.publish(request_topic(s, "status"), R"({"transaction":7})");
    auto msg = wait_reply(s, "status", "7", since);
    CHECK(msg.payload.find(R"("transaction":7)") != std::string::npos);
    auto reply = msg.json();
    CHECK(is_ok_reply(reply));
    REQUIRE(reply["data"].HasMember("accounts"));
    REQUIRE(reply["data"]["accounts"].IsObject());
    CHECK(reply["data"]["accounts"].MemberCount() == 1);
    REQUIRE(reply["data"]["accounts"].HasMember("kitchen"));
    CHECK(is_state_object(reply["data"]["accounts"]["kitchen"]));
    CHECK_FALSE(reply["data"].HasMember("state"));
  }
  // Other numbers are echoed as numbers.
  for (const char* tx : {"0", "-12", "1.5", "123456789012"}) {
    CAPTURE(tx);
    const auto since = s.display.mark();
    s.display.publish(request_topic(s, "status"), std::string(R"({"transaction":)") + tx + "}");
    auto reply = wait_reply(s, "status", tx, since).json();
    CHECK(is_ok_reply(reply));
  }
  // No transaction, a null one, an empty payload (= {}): the reply has no transaction.
  for (const char* payload :
       {R"({})", R"({"transaction":null})", "", R"({"account":"kitchen","transaction":null})"}) {
    CAPTURE(payload);
    auto reply = raw_request(s, "status", payload).json();
    CHECK(is_ok_reply(reply));
    CHECK_FALSE(reply.HasMember("transaction"));
  }
  // A transaction of another type: an error reply that echoes it as sent.
  for (const char* tx : {"true", "false", R"({"id":1})", R"([1,"a"])"}) {
    CAPTURE(tx);
    auto reply =
        raw_request(s, "status", std::string(R"({"account":"kitchen","transaction":)") + tx + "}")
            .json();
    CHECK(is_error_reply(reply));
    CHECK(lower(json_str(reply, "error")).find("transaction") != std::string::npos);
    CHECK(transaction_of(reply) == std::optional<std::string>(tx));
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  // Unknown fields are ignored.
  {
    auto reply = s.display.request("status", R"({"account":"kitchen","colour":"blue","n":[1]})");
    CHECK(is_ok_reply(reply));
    CHECK(is_state_object(reply["data"]));
  }
  // Unknown account and unknown action: error replies with the transaction.
  {
    auto reply = s.display.request("status", R"({"account":"garage","transaction":"st-2"})");
    CHECK(is_error_reply(reply));
    CHECK(json_str(reply, "error").find("garage") != std::string::npos);
    CHECK(transaction_of(reply) == R"("st-2")");
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  {
    auto reply = s.display.request("reboot", R"({"account":"kitchen","transaction":"st-3"})");
    CHECK(is_error_reply(reply));
    CHECK(json_str(reply, "error").find("reboot") != std::string::npos);
    CHECK(transaction_of(reply) == R"("st-3")");
  }
  // status has no side effect.
  CHECK(s.simulator.counters().devicecode == 0);
  CHECK(json_str(retained_state(s), "state") == "signed_out");
}

TEST_CASE("commands: login, cancel, logout and refresh with the account omitted (one account)") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;

  // refresh without a sign-in: error.
  {
    auto reply = d.request("refresh", R"({"transaction":"r-0"})");
    CHECK(is_error_reply(reply));
    CHECK(lower(json_str(reply, "error")).find("not signed in") != std::string::npos);
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  // cancel with nothing pending: error.
  {
    auto reply = d.request("cancel", R"({"transaction":"c-0"})");
    CHECK(is_error_reply(reply));
    CHECK(lower(json_str(reply, "error")).find("pending") != std::string::npos);
    CHECK(transaction_of(reply) == R"("c-0")");
    CHECK_FALSE(reply.HasMember("retry_in"));
  }

  // login without `account`: the pending state object with its code.
  const auto before_login = d.mark();
  auto login = d.request("login", R"({"transaction":"l-1"})");
  REQUIRE(is_ok_reply(login));
  CHECK(transaction_of(login) == R"("l-1")");
  REQUIRE(is_state_object(login["data"]));
  CHECK(json_str(login["data"], "state") == "pending");
  REQUIRE(login["data"]["code"].IsObject());
  const std::string user_code = json_str(login["data"]["code"], "user_code");
  CHECK(user_code.size() == 9);
  CHECK(json_str(login["data"]["code"], "verification_uri") == "https://microsoft.com/devicelogin");
  auto code_msg = d.wait_for_json(
      s.topic("kitchen", "auth/code"), [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      before_login);
  CHECK(json_str(code_msg.json(), "user_code") == user_code);

  // Already pending: the current code, no new device-code request (also with force).
  for (const char* payload : {R"({"transaction":"l-2"})", R"({"force":true,"transaction":"l-3"})",
                              R"({"account":"kitchen","force":false,"transaction":"l-4"})"}) {
    CAPTURE(payload);
    auto again = d.request("login", payload);
    REQUIRE(is_ok_reply(again));
    CHECK(json_str(again["data"], "state") == "pending");
    REQUIRE(again["data"]["code"].IsObject());
    CHECK(json_str(again["data"]["code"], "user_code") == user_code);
  }
  CHECK(s.simulator.counters().devicecode == 1);

  // status while pending carries the code.
  {
    auto status = d.request("status", R"({"account":"kitchen"})");
    REQUIRE(is_ok_reply(status));
    CHECK(json_str(status["data"], "state") == "pending");
    CHECK(json_str(status["data"]["code"], "user_code") == user_code);
  }

  // cancel: signed_out with reason cancelled, auth/code cleared.
  const auto before_cancel = d.mark();
  auto cancel = d.request("cancel", R"({"transaction":"c-1"})");
  REQUIRE(is_ok_reply(cancel));
  CHECK(transaction_of(cancel) == R"("c-1")");
  REQUIRE(is_state_object(cancel["data"]));
  CHECK(json_str(cancel["data"], "state") == "signed_out");
  CHECK(json_str(cancel["data"], "reason") == "cancelled");
  CHECK(cancel["data"]["code"].IsNull());
  d.wait_for(
      s.topic("kitchen", "auth/code"), [](const Message& m) { return m.payload.empty(); }, 10s,
      before_cancel);
  CHECK(json_str(s.wait_state("kitchen", "signed_out", before_cancel).json(), "reason") ==
        "cancelled");
  s.wait_event("kitchen", "cancelled", before_cancel);

  // A second cancel: nothing pending any more.
  {
    auto reply = d.request("cancel", "{}");
    CHECK(is_error_reply(reply));
  }

  // A new login within 10 s of the last login-started request: error with retry_in, no request.
  {
    auto reply = d.request("login", R"({"transaction":"l-5"})");
    CHECK(is_error_reply(reply));
    REQUIRE(reply.HasMember("retry_in"));
    REQUIRE(reply["retry_in"].IsNumber());
    CHECK(reply["retry_in"].GetDouble() >= 1);
    CHECK(reply["retry_in"].GetDouble() <= 10);
    CHECK(transaction_of(reply) == R"("l-5")");
    CHECK(s.simulator.counters().devicecode == 1);
  }

  // logout when already signed out: ok, reason becomes logout.
  const auto before_logout = d.mark();
  auto logout = d.request("logout", R"({"transaction":"o-1"})");
  REQUIRE(is_ok_reply(logout));
  CHECK(transaction_of(logout) == R"("o-1")");
  REQUIRE(is_state_object(logout["data"]));
  CHECK(json_str(logout["data"], "state") == "signed_out");
  CHECK(json_str(logout["data"], "reason") == "logout");
  auto state = s.display.wait_for_json(
      s.topic("kitchen", "auth/state"),
      [](const rapidjson::Value& v) { return json_str(v, "reason") == "logout"; }, 10s,
      before_logout);
  CHECK(json_str(state.json(), "state") == "signed_out");
  CHECK(json_str(retained_state(s), "reason") == "logout");

  // refresh still refused.
  CHECK(is_error_reply(d.request("refresh", "{}")));
  CHECK(s.simulator.counters().refresh == 0);
}

TEST_CASE("commands: signed in, login returns the state, refresh, refresh a resource, logout") {
  Scenario s;
  s.sign_in();
  auto& d = s.display;
  // Let the fetches after the sign-in land first.
  d.wait_for_json(s.topic("kitchen", "graph/presence"),
                  [](const rapidjson::Value& v) { return v.IsObject(); });

  // login without force when signed in: the current state, no device-code request.
  {
    auto reply = d.request("login", R"({"account":"kitchen"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(json_str(reply["data"], "state") == "signed_in");
    CHECK(json_str(reply["data"]["user"], "name") == "Adele Vance");
    CHECK(reply["data"]["code"].IsNull());
    CHECK(s.simulator.counters().devicecode == 1);
  }
  // login with force within 10 s of the last login: error with retry_in, still signed in.
  {
    auto reply = d.request("login", R"({"account":"kitchen","force":true})");
    CHECK(is_error_reply(reply));
    CHECK(reply.HasMember("retry_in"));
    CHECK(s.simulator.counters().devicecode == 1);
    CHECK(json_str(retained_state(s), "state") == "signed_in");
  }

  // refresh (no resource): redeems the refresh token now, replies with the state object.
  {
    const auto since = d.mark();
    auto reply = d.request("refresh", R"({"account":"kitchen","transaction":"rf-1"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(transaction_of(reply) == R"("rf-1")");
    REQUIRE(is_state_object(reply["data"]));
    CHECK(json_str(reply["data"], "state") == "signed_in");
    CHECK(s.simulator.counters().refresh == 1);
    s.wait_event("kitchen", "token_refreshed", since);
  }

  // refresh with a resource: {"resource":R,"status":200}, and the body is published again.
  {
    const auto since = d.mark();
    auto reply = d.request("refresh", R"({"resource":"presence","transaction":"rf-2"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(transaction_of(reply) == R"("rf-2")");
    CHECK(json_str(reply["data"], "resource") == "presence");
    REQUIRE(reply["data"].HasMember("status"));
    CHECK(number(reply["data"]["status"]) == 200);
    CHECK(reply["data"].MemberCount() == 2);
    d.wait_for_json(
        s.topic("kitchen", "graph/presence"),
        [](const rapidjson::Value& v) { return json_str(v, "availability") == "Available"; }, 10s,
        since);
  }
  // An unknown resource: error.
  {
    auto reply = request_when_allowed(s, "refresh", R"({"resource":"calendar"})");
    CHECK(is_error_reply(reply));
    CHECK(json_str(reply, "error").find("calendar") != std::string::npos);
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  // Two resource refreshes within a second: the second gets an error with retry_in.
  {
    auto first = request_when_allowed(s, "refresh", R"({"resource":"me"})");
    REQUIRE(is_ok_reply(first));
    CHECK(json_str(first["data"], "resource") == "me");
    auto second = d.request("refresh", R"({"resource":"me"})");
    CHECK(is_error_reply(second));
    REQUIRE(second.HasMember("retry_in"));
    CHECK(second["retry_in"].GetDouble() >= 1);
  }

  // logout: ok with reason logout; auth/code and every graph/R cleared; only signed_out emitted.
  const auto before_logout = d.mark();
  auto logout = d.request("logout", R"({"transaction":"o-1"})");
  REQUIRE(is_ok_reply(logout));
  CHECK(json_str(logout["data"], "state") == "signed_out");
  CHECK(json_str(logout["data"], "reason") == "logout");
  CHECK(logout["data"]["user"].IsNull());
  for (const char* leaf : {"graph/me", "graph/presence", "auth/code"}) {
    CAPTURE(leaf);
    d.wait_for(
        s.topic("kitchen", leaf), [](const Message& m) { return m.payload.empty(); }, 10s,
        before_logout);
    CHECK(d.retained_value(s.topic("kitchen", leaf)) == std::nullopt);
  }
  auto ev = s.wait_event("kitchen", "signed_out", before_logout).json();
  CHECK(json_str(ev, "reason") == "logout");
  CHECK(json_str(retained_state(s), "reason") == "logout");

  // Signed out again: refresh, with or without a resource, is refused.
  CHECK(is_error_reply(d.request("refresh", "{}")));
  CHECK(is_error_reply(request_when_allowed(s, "refresh", R"({"resource":"presence"})")));
}

TEST_CASE("commands: graph GETs allowed paths, refuses others and is rate limited") {
  Scenario s;
  s.sign_in();
  auto& d = s.display;

  // Two graph requests sent together: the first is answered from Graph, the second (within the
  // same second) gets an error with retry_in.
  {
    const auto since = d.mark();
    d.publish(request_topic(s, "graph"), R"({"path":"/me","transaction":"g-1"})");
    d.publish(request_topic(s, "graph"), R"({"path":"/me/presence","transaction":"g-2"})");
    auto first = wait_reply(s, "graph", R"("g-1")", since).json();
    auto second = wait_reply(s, "graph", R"("g-2")", since).json();
    REQUIRE(is_ok_reply(first));
    CHECK(number(first["data"]["status"]) == 200);
    REQUIRE(first["data"]["body"].IsObject());
    CHECK(json_str(first["data"]["body"], "displayName") == "Adele Vance");
    CHECK(json_str(first["data"]["body"], "userPrincipalName") == "adele@contoso.com");
    CHECK(is_error_reply(second));
    REQUIRE(second.HasMember("retry_in"));
    CHECK(second["retry_in"].GetDouble() >= 1);
    CHECK(second["retry_in"].GetDouble() <= 2);
  }
  // /me/presence and /me?$select=displayName are under /me on a segment boundary.
  {
    auto reply = request_when_allowed(s, "graph", R"({"account":"kitchen","path":"/me/presence"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(number(reply["data"]["status"]) == 200);
    CHECK(reply["data"].MemberCount() == 2);
    CHECK(json_str(reply["data"]["body"], "availability") == "Available");
  }
  {
    auto reply = request_when_allowed(s, "graph", R"({"path":"/me?$select=displayName"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(number(reply["data"]["status"]) == 200);
    CHECK(json_str(reply["data"]["body"], "displayName") == "Adele Vance");
    CHECK_FALSE(reply["data"]["body"].HasMember("mail"));
  }
  // A Graph 404 is still ok, with that status and Graph's body.
  {
    auto reply = request_when_allowed(s, "graph", R"({"path":"/me/nothing-here"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(number(reply["data"]["status"]) == 404);
    REQUIRE(reply["data"]["body"].IsObject());
    CHECK(reply["data"]["body"].HasMember("error"));
  }
  // Refused paths never reach Graph (the table of bad input has many more).
  const long graph_before = s.simulator.counters().graph;
  for (const char* path : {"/users", "/me2", "/messages", "/me/../users"}) {
    CAPTURE(path);
    auto reply = d.request("graph", std::string(R"({"path":")") + path + R"("})");
    CHECK(is_error_reply(reply));
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  CHECK(s.simulator.counters().graph == graph_before);
}

TEST_CASE("commands: refresh of a resource answered 429 is ok with that status, then waits") {
  Scenario s;
  s.sign_in();
  auto& d = s.display;
  d.wait_for_json(s.topic("kitchen", "graph/presence"),
                  [](const rapidjson::Value& v) { return v.IsObject(); });
  s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","count":1,"status":429,"retry_after":"30",)"
                   R"("error":"TooManyRequests","description":"Too many requests"})");
  auto reply = request_when_allowed(s, "refresh", R"({"resource":"presence","transaction":5})");
  REQUIRE(is_ok_reply(reply));
  CHECK(transaction_of(reply) == "5");
  CHECK(json_str(reply["data"], "resource") == "presence");
  CHECK(number(reply["data"]["status"]) == 429);
  // Inside the Retry-After window: an error reply with retry_in, no request to Graph.
  const long graph_before = s.simulator.counters().graph;
  auto waiting = request_when_allowed(s, "refresh", R"({"resource":"presence"})");
  CHECK(is_error_reply(waiting));
  REQUIRE(waiting.HasMember("retry_in"));
  CHECK(waiting["retry_in"].GetDouble() >= 25);
  CHECK(waiting["retry_in"].GetDouble() <= 30);
  CHECK(s.simulator.counters().graph == graph_before);
}

TEST_CASE("commands: with two accounts the account is required and each is addressed by name") {
  Scenario s({.accounts = kitchen_account() + hall_account()});
  s.wait_state("kitchen", "signed_out");
  s.wait_state("hall", "signed_out");
  auto& d = s.display;

  // Omitted account: an error for every action but status.
  for (const char* action : {"login", "logout", "cancel", "refresh", "graph"}) {
    CAPTURE(action);
    auto reply = d.request(action, R"({"path":"/me"})");
    CHECK(is_error_reply(reply));
    CHECK(lower(json_str(reply, "error")).find("account") != std::string::npos);
    CHECK_FALSE(reply.HasMember("retry_in"));
  }
  // Unknown account.
  {
    auto reply = d.request("login", R"({"account":"garage","transaction":"x-1"})");
    CHECK(is_error_reply(reply));
    CHECK(json_str(reply, "error").find("garage") != std::string::npos);
    CHECK(transaction_of(reply) == R"("x-1")");
  }
  CHECK(s.simulator.counters().devicecode == 0);

  // status without account: both; with account: one state object.
  {
    auto reply = d.request("status", "{}");
    REQUIRE(is_ok_reply(reply));
    REQUIRE(reply["data"]["accounts"].IsObject());
    CHECK(reply["data"]["accounts"].MemberCount() == 2);
    CHECK(is_state_object(reply["data"]["accounts"]["kitchen"]));
    CHECK(is_state_object(reply["data"]["accounts"]["hall"]));
  }
  {
    auto reply = d.request("status", R"({"account":"hall"})");
    REQUIRE(is_ok_reply(reply));
    CHECK(is_state_object(reply["data"]));
    CHECK_FALSE(reply["data"].HasMember("accounts"));
  }

  // login hall: only hall becomes pending.
  const auto since = d.mark();
  auto login = d.request("login", R"({"account":"hall"})");
  REQUIRE(is_ok_reply(login));
  CHECK(json_str(login["data"], "state") == "pending");
  s.wait_state("hall", "pending", since);
  {
    auto reply = d.request("status", "{}");
    CHECK(json_str(reply["data"]["accounts"]["hall"], "state") == "pending");
    CHECK(json_str(reply["data"]["accounts"]["kitchen"], "state") == "signed_out");
  }
  // cancel kitchen: nothing pending there; cancel hall: ok.
  CHECK(is_error_reply(d.request("cancel", R"({"account":"kitchen"})")));
  auto cancel = d.request("cancel", R"({"account":"hall"})");
  REQUIRE(is_ok_reply(cancel));
  CHECK(json_str(cancel["data"], "reason") == "cancelled");
  CHECK(s.simulator.counters().devicecode == 1);
}

TEST_CASE("commands: a second login during the device-code request gets the same outcome") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  // The device-code answer takes 800 ms: the second login arrives while it is in flight.
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"delay_ms":800})");
  const auto since = d.mark();
  d.publish(request_topic(s, "login"), R"({"account":"kitchen","transaction":"a"})");
  d.publish(request_topic(s, "login"), R"({"account":"kitchen","transaction":"b"})");
  auto a = wait_reply(s, "login", R"("a")", since).json();
  auto b = wait_reply(s, "login", R"("b")", since).json();
  REQUIRE(is_ok_reply(a));
  REQUIRE(is_ok_reply(b));
  CHECK(json_str(a["data"], "state") == "pending");
  CHECK(json_str(a["data"]["code"], "user_code") == json_str(b["data"]["code"], "user_code"));
  CHECK(s.simulator.counters().devicecode == 1);
}

TEST_CASE("commands: cancel ends a sign-in whose device-code request is still in flight") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"delay_ms":800})");
  const auto since = d.mark();
  d.publish(request_topic(s, "login"), R"({"transaction":"l"})");
  // The request reached the simulator before the cancel is sent.
  REQUIRE(poll_until([&] { return s.simulator.counters().devicecode == 1; }, 5s));
  auto cancel = d.request("cancel", R"({"transaction":"c"})");
  REQUIRE(is_ok_reply(cancel));
  CHECK(json_str(cancel["data"], "state") == "signed_out");
  CHECK(json_str(cancel["data"], "reason") == "cancelled");
  // The login gets its outcome too (the sign-in it started was cancelled).
  wait_reply(s, "login", R"("l")", since);
  // No code is shown afterwards, not even when the delayed answer would have come (a deadline
  // for something that must not happen).
  const auto code_shown = [&] {
    for (const auto& m : d.messages(s.topic("kitchen", "auth/code"))) {
      if (m.index >= since && !m.payload.empty()) return true;
    }
    return false;
  };
  CHECK_FALSE(poll_until(code_shown, 1500ms));
  CHECK(json_str(retained_state(s), "reason") == "cancelled");
}

TEST_CASE("commands: a transient device-code failure gets an error reply with retry_in") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"status":503,"retry_after":"1"})");
  const auto since = d.mark();
  auto reply = d.request("login", R"({"transaction":"t-1"})");
  CHECK(is_error_reply(reply));
  REQUIRE(reply.HasMember("retry_in"));
  REQUIRE(reply["retry_in"].IsNumber());
  const double retry_in = reply["retry_in"].GetDouble();
  CHECK(retry_in >= 1);
  CHECK(retry_in <= 10);
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(error["retry_in"].IsNumber());
  // The retries go on: the code comes without another login.
  auto code = d.wait_for_json(
      s.topic("kitchen", "auth/code"), [](const rapidjson::Value& v) { return v.IsObject(); },
      std::chrono::milliseconds(static_cast<long long>(retry_in * 1000) + 5000), since);
  CHECK(json_str(code.json(), "user_code").size() == 9);
  CHECK(s.simulator.counters().devicecode == 2);
}

TEST_CASE("commands: identity.max_pending_sign_ins caps the sign-ins that wait for a user") {
  ScenarioOptions options;
  options.accounts =
      kitchen_account() + hall_account() + "porch:\n  client_id: " + kHallClientId + "\n";
  options.identity_extra = "max_pending_sign_ins: 2\n";
  Scenario s(options);
  s.wait_state("porch", "signed_out");
  auto& d = s.display;

  const auto kitchen_code = s.login("kitchen");
  s.login("hall");
  const long requested = s.simulator.counters().devicecode;
  // A third account would be the third code out at once: refused, with a time to come back
  // (at the latest when the first code expires), and nothing sent to the platform.
  {
    const auto since = d.mark();
    auto reply = d.request("login", R"({"account":"porch"})");
    REQUIRE(is_error_reply(reply));
    CHECK(lower(json_str(reply, "error")).find("max_pending_sign_ins") != std::string::npos);
    REQUIRE(reply["retry_in"].IsInt());
    CHECK(reply["retry_in"].GetInt() >= 1);
    CHECK(reply["retry_in"].GetInt() <= 900);
    CHECK(s.simulator.counters().devicecode == requested);
    CHECK(json_str(retained_state(s, "porch"), "state") == "signed_out");
    CHECK_FALSE(d.retained_value(s.topic("porch", "auth/code")).has_value());
    d.sync();
    for (const auto& m : d.messages(s.topic("porch", "events"))) CHECK(m.index < since);
  }
  // A login for an account that is already waiting joins its sign-in: not refused.
  {
    auto reply = d.request("login", R"({"account":"hall"})");
    CHECK(is_ok_reply(reply));
    CHECK(json_str(reply["data"], "state") == "pending");
  }
  // Once one sign-in ends (the kitchen user approves), the third may start.
  {
    const auto since = d.mark();
    s.simulator.approve(kitchen_code);
    s.wait_state("kitchen", "signed_in", since);
    s.login("porch");
    CHECK(s.simulator.counters().devicecode == requested + 1);
  }
  // A forced sign-in of a signed-in account is a new sign-in too, so the cap applies to it.
  {
    auto reply = d.request("login", R"({"account":"kitchen","force":true})");
    CHECK(is_error_reply(reply));
    CHECK(reply["retry_in"].IsInt());
    CHECK(json_str(retained_state(s, "kitchen"), "state") == "signed_in");
  }
  CHECK(s.simulator.counters().interval_violations == 0);
}
