// Limits that protect the tokens and the identity platform (docs/mqtt-api.md "Rate limits"):
// `refresh` without a resource, a login during a retry wait, and replies that say what really
// happened.
#include <doctest/doctest.h>

#include "scenario_extra.h"

using namespace g2m::test;

TEST_CASE("refresh: a flood makes one token redemption at a time and one per 10 s") {
  Scenario s;
  s.sign_in();
  wait_resources(s, 0);
  const long before = s.simulator.counters().refresh;
  // The platform takes a second: the requests that arrive meanwhile join the one under way.
  s.simulator.fail(R"({"endpoint":"refresh","count":1,"delay_ms":1000})");
  const auto since = s.display.mark();
  for (int i = 0; i < 30; ++i) {
    s.display.publish("graph2mqtt/bridge/request/refresh",
                      R"({"account":"kitchen","transaction":)" + std::to_string(i) + "}");
  }
  std::vector<Message> replies;
  REQUIRE(poll_until(
      [&] {
        replies = messages_since(s, "graph2mqtt/bridge/response/refresh", since);
        return replies.size() == 30;
      },
      20s));
  int ok = 0, limited = 0;
  for (const auto& m : replies) {
    const auto reply = m.json();
    if (json_str(reply, "status") == "ok") {
      ++ok;
    } else {
      CHECK(json_str(reply, "error").find("10 s") != std::string::npos);
      REQUIRE(reply.HasMember("retry_in"));
      CHECK(reply["retry_in"].GetInt() >= 1);
      CHECK(reply["retry_in"].GetInt() <= 10);
      ++limited;
    }
  }
  CHECK(ok >= 1);
  CHECK(ok + limited == 30);
  CHECK(s.simulator.counters().refresh == before + 1);
  CHECK(s.simulator.counters().rotated_token_reuse == 0);
  // Scheduled and 401-triggered refreshes are not limited: a Graph 401 still refreshes.
  s.simulator.expire_tokens();
  auto fetch = s.display.request("refresh", R"({"account":"kitchen","resource":"me"})");
  CHECK(json_str(fetch, "status") == "ok");
  CHECK(s.simulator.counters().refresh == before + 2);
}

TEST_CASE("login: during a retry wait a second login is answered at once with retry_in") {
  Scenario s;
  wait_started(s);
  s.simulator.fail(R"({"endpoint":"devicecode","count":1,"status":503,"retry_after":"30"})");
  auto first = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(first, "status") == "error");
  REQUIRE(first.HasMember("retry_in"));
  CHECK(first["retry_in"].GetInt() >= 25);
  const auto sent = SteadyClock::now();
  auto second = s.display.request("login", R"({"account":"kitchen"})", 10s);
  CHECK(json_str(second, "status") == "error");
  REQUIRE(second.HasMember("retry_in"));
  CHECK(second["retry_in"].GetInt() >= 20);
  CHECK(seconds_between(sent, SteadyClock::now()) < 10);  // not at the next attempt, 30 s away
  CHECK(s.simulator.counters().devicecode == 1);
}

TEST_CASE("logout during a refresh: the refresh's reply says the account is signed out") {
  Scenario s;
  s.sign_in();
  s.simulator.fail(R"({"endpoint":"refresh","count":1,"delay_ms":2000})");
  const auto since = s.display.mark();
  s.display.publish("graph2mqtt/bridge/request/refresh", R"({"account":"kitchen"})");
  REQUIRE(poll_until([&] { return s.simulator.counters().refresh >= 1; }, 10s));
  CHECK(json_str(s.display.request("logout", R"({"account":"kitchen"})"), "status") == "ok");
  std::vector<Message> replies;
  REQUIRE(poll_until(
      [&] {
        replies = messages_since(s, "graph2mqtt/bridge/response/refresh", since);
        return !replies.empty();
      },
      10s));
  const auto reply = replies.front().json();
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  CHECK(json_str(reply, "error").find("signed out") != std::string::npos);
}

TEST_CASE(
    "sign-in: between approval and the /me lookup login joins and cancel says it is approved") {
  Scenario s;
  wait_started(s);
  s.simulator.config(R"({"omit_id_token":true})");
  s.simulator.fail(R"({"endpoint":"/v1.0/me","count":1,"delay_ms":3000})");
  const auto since = s.display.mark();
  s.simulator.approve(s.login());
  // The approval is seen at the next poll; then the agent waits for /me.
  REQUIRE(poll_until([&] { return s.simulator.counters().graph >= 1; }, 10s));
  auto cancel = s.display.request("cancel", R"({"account":"kitchen"})");
  CHECK(json_str(cancel, "status") == "error");
  CHECK(json_str(cancel, "error").find("already approved") != std::string::npos);
  auto login = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(login, "status") == "ok");
  s.wait_state("kitchen", "signed_in", since, 15s);
  CHECK(s.simulator.counters().devicecode == 1);  // no second flow
}
