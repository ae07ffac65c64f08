// MQTT 5 request/response (docs/mqtt-api.md "Commands": response topic + correlation data, and the
// topics that are refused), the message-expiry interval of auth/code (§1), and MQTT 3.1.1 mode (§3
// `mqtt.version: 4`) end to end with a 3.1.1 display.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <thread>

#include "scenario_commands.h"

using namespace g2m::test;

namespace {

// Binary correlation data, with a NUL and bytes that are not UTF-8.
const std::string kCorrelation = std::string("corr\0\x01\xFF\xFE-", 9) + "42";

// The first auth/code object after `since`.
Message wait_code(Scenario& s, std::size_t since, std::chrono::milliseconds timeout = 10s) {
  return s.display.wait_for_json(
      s.topic("kitchen", "auth/code"), [](const rapidjson::Value& v) { return v.IsObject(); },
      timeout, since);
}

}  // namespace

TEST_CASE("mqtt5: a request with a response topic gets the reply there and on the fixed topic") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;

  // status: the reply on the requester's topic with the same correlation data, byte for byte.
  const auto since = d.mark();
  auto direct = d.request_v5("status", R"({"account":"kitchen","transaction":"v5-1"})",
                             "displays/kitchen/replies", kCorrelation);
  REQUIRE(direct.correlation_data.has_value());
  CHECK(*direct.correlation_data == kCorrelation);
  auto reply = direct.json();
  CHECK(is_ok_reply(reply));
  CHECK(transaction_of(reply) == R"("v5-1")");
  CHECK(json_str(reply["data"], "state") == "signed_out");
  // ... and the same reply on the fixed topic.
  auto fixed = wait_reply(s, "status", R"("v5-1")", since);
  CHECK(fixed.payload == direct.payload);

  // Without a transaction the correlation data alone ties the reply to the request.
  {
    auto m = d.request_v5("status", "{}", "displays/kitchen/replies", "second");
    CHECK(m.correlation_data == std::optional<std::string>("second"));
    auto r = m.json();
    CHECK(is_ok_reply(r));
    CHECK_FALSE(r.HasMember("transaction"));
    REQUIRE(r["data"].HasMember("accounts"));
  }
  // A response topic under B/bridge/response/ is allowed.
  {
    auto m = d.request_v5("status", R"({"transaction":"v5-2"})",
                          "graph2mqtt/bridge/response/status/display-1", "third");
    CHECK(m.correlation_data == std::optional<std::string>("third"));
    CHECK(is_ok_reply(m.json()));
  }
  // An error reply goes to the response topic too.
  {
    auto m =
        d.request_v5("cancel", R"({"transaction":"v5-3"})", "displays/kitchen/replies", "fourth");
    CHECK(m.correlation_data == std::optional<std::string>("fourth"));
    auto r = m.json();
    CHECK(is_error_reply(r));
    CHECK(transaction_of(r) == R"("v5-3")");
  }
  // login: the reply comes after the device-code answer, with the code.
  {
    auto m = d.request_v5("login", R"({"transaction":"v5-4"})", "displays/kitchen/replies",
                          kCorrelation);
    CHECK(m.correlation_data == kCorrelation);
    auto r = m.json();
    REQUIRE(is_ok_reply(r));
    CHECK(json_str(r["data"], "state") == "pending");
    CHECK(json_str(r["data"]["code"], "user_code").size() == 9);
  }
}

TEST_CASE("mqtt5: a refused response topic runs nothing and gets an error on the fixed topic") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  const std::vector<std::string> refused = {
      "displays/+/replies",
      "displays/kitchen/#",
      "#",
      "$SYS/replies",
      "$share/g/replies",
      "graph2mqtt/kitchen/auth/state",
      "graph2mqtt/kitchen/auth/code",
      "graph2mqtt/bridge/state",
      "graph2mqtt/bridge/request/login",
      "graph2mqtt/bridge/response",
      "graph2mqtt/replies/me",
  };
  const auto retained_before = retained_snapshot(s);
  const auto start = d.mark();
  for (std::size_t i = 0; i < refused.size(); ++i) {
    const std::string& topic = refused[i];
    CAPTURE(topic);
    const std::string tx = "\"rt-" + std::to_string(i) + "\"";
    const std::string correlation = "refused-" + std::to_string(i);
    const auto since = d.mark();
    // A login: if it ran, a device-code request would start.
    d.publish(Outgoing{.topic = request_topic(s, "login"),
                       .payload = R"({"account":"kitchen","transaction":)" + tx + "}",
                       .response_topic = topic,
                       .correlation_data = correlation});
    auto r = wait_reply(s, "login", tx, since).json();
    CHECK(is_error_reply(r));
    CHECK(lower(json_str(r, "error")).find("response topic") != std::string::npos);
    CHECK_FALSE(r.HasMember("retry_in"));
    d.sync();
    // Nothing went to the refused topic (the display sees every topic but $ ones).
    for (const auto& m : d.messages("#")) {
      if (m.index >= since && m.topic != request_topic(s, "login") &&
          (m.topic == topic || m.correlation_data == correlation)) {
        CHECK_MESSAGE(false, "a reply went to the refused topic: " << m.describe());
      }
    }
  }
  // No sign-in was started and the retained state is as it was.
  CHECK(s.simulator.counters().devicecode == 0);
  auto state = d.retained_value(s.topic("kitchen", "auth/state"));
  REQUIRE(state.has_value());
  CHECK(json_str(parse_json(*state), "state") == "signed_out");
  for (const auto& m : d.messages(s.topic("kitchen", "#"))) {
    CHECK_MESSAGE(m.index < start, "the account changed: " << m.describe());
  }
  CHECK(retained_snapshot(s) == retained_before);
  CHECK(s.agent->running());
}

TEST_CASE("mqtt5: a refused response topic gets nothing, even when the request is malformed") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  const auto count_connects = [&] {
    std::size_t n = 0;
    const std::string log = s.agent->log_text();
    for (std::size_t pos = 0; (pos = log.find("mqtt: connected", pos)) != std::string::npos;
         ++pos) {
      ++n;
    }
    return n;
  };
  const auto connects_before = count_connects();
  // The wildcard last: publishing there costs the agent its connection (a protocol error).
  const std::vector<std::string> refused = {"graph2mqtt/kitchen/auth/state",
                                            "graph2mqtt/bridge/state", "$SYS/replies",
                                            "displays/+/replies"};
  const std::vector<std::string> payloads = {"not json",
                                             "[1]",
                                             "{\"account\":\"kitchen\",\"note\":\"\xFF\"}",
                                             R"({"account":"kitchen","transaction":{"id":1}})",
                                             R"({"account":7})",
                                             std::string(65537, ' ')};
  for (const auto& topic : refused) {
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      CAPTURE(topic);
      CAPTURE(i);
      const std::string correlation = "bad-" + std::to_string(i);
      const auto since = d.mark();
      d.publish(Outgoing{.topic = request_topic(s, "login"),
                         .payload = payloads[i],
                         .response_topic = topic,
                         .correlation_data = correlation});
      auto r = d.wait_for(response_topic(s, "login"), {}, 5s, since).json();
      CHECK(is_error_reply(r));
      d.sync();
      // Nothing but the fixed reply: no message on the refused topic, none with the correlation.
      for (const auto& m : d.messages("#")) {
        if (m.index < since || m.topic == request_topic(s, "login")) continue;
        if (m.topic.rfind("g2m-test/", 0) == 0) continue;
        CHECK_MESSAGE(m.topic == response_topic(s, "login"), "unexpected: " << m.describe());
        CHECK_FALSE(m.correlation_data.has_value());
      }
    }
  }
  // The agent kept its connection (a publish to a wildcard topic would have cost it).
  CHECK(count_connects() == connects_before);
  auto status = d.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_out");
  CHECK(s.simulator.counters().devicecode == 0);
  CHECK(s.agent->running());
}

TEST_CASE("mqtt5: auth/code carries a message-expiry interval of the seconds the code has left") {
  Scenario s({.simulator_args = {"--interval", "1", "--expires-in", "120"}});
  s.wait_state("kitchen", "signed_out");
  const auto since = s.display.mark();
  s.login();
  auto code = wait_code(s, since);
  const std::string expires_at = json_str(code.json(), "expires_at");
  REQUIRE(code.message_expiry.has_value());
  CHECK(code.retained == false);  // a live publication (retained on the broker)
  const double left = seconds_until(expires_at);
  CAPTURE(left);
  CHECK(*code.message_expiry <= 120);
  CHECK(std::abs(*code.message_expiry - left) <= 1.5);
  // auth/state carries the same expiry while it is pending.
  auto pending = s.wait_state("kitchen", "pending", since);
  REQUIRE(pending.message_expiry.has_value());
  CHECK(std::abs(*pending.message_expiry - *code.message_expiry) <= 1);
  // A display that subscribes now gets the retained code with at most that many seconds left.
  auto retained = s.display.fetch_retained(s.topic("kitchen", "auth/code"));
  REQUIRE(retained.size() == 1);
  REQUIRE(retained[0].message_expiry.has_value());
  CHECK(*retained[0].message_expiry <= *code.message_expiry);
  CHECK(*retained[0].message_expiry >= *code.message_expiry - 2);
  // Once signed in, auth/state has no expiry any more (the access token's expiry is in the body).
  const auto before_approve = s.display.mark();
  s.simulator.approve(json_str(code.json(), "user_code"));
  auto signed_in = s.wait_state("kitchen", "signed_in", before_approve);
  CHECK_FALSE(signed_in.message_expiry.has_value());
}

TEST_CASE("mqtt5: after a broker restart auth/code is re-published with the seconds left") {
  Scenario s({.simulator_args = {"--interval", "1", "--expires-in", "120"}});
  s.wait_state("kitchen", "signed_out");
  const auto since = s.display.mark();
  s.login();
  auto first = wait_code(s, since);
  REQUIRE(first.message_expiry.has_value());
  const std::string expires_at = json_str(first.json(), "expires_at");

  // The broker crashes and loses its retained store; the code ages while it is away (so a
  // re-publication with the first interval would be seconds too long).
  const auto connects = s.display.connects();
  const auto log_before = s.agent->log_text().size();
  s.broker.kill9();
  // Let the code age: wait until the agent has failed to reconnect at least once (≥ 1 s).
  CHECK(poll_until(
      [&] { return s.agent->log_text().find("error mqtt:", log_before) != std::string::npos; },
      15s));
  const auto before_restart = s.display.mark();
  s.broker.start();
  s.display.wait_connects(connects + 1);
  auto again = wait_code(s, before_restart, 15s);
  CHECK(json_str(again.json(), "expires_at") == expires_at);
  REQUIRE(again.message_expiry.has_value());
  const double left = seconds_until(expires_at);
  CAPTURE(left);
  CHECK(std::abs(*again.message_expiry - left) <= 1.5);
  CHECK(*again.message_expiry <= *first.message_expiry - 2);
}

TEST_CASE("mqtt5: a code whose agent is gone disappears from the broker when it expires") {
  Scenario s({.simulator_args = {"--interval", "1", "--expires-in", "4"}});
  s.wait_state("kitchen", "signed_out");
  const auto since = s.display.mark();
  s.login();
  auto code = wait_code(s, since);
  REQUIRE(code.message_expiry.has_value());
  // The agent dies without clearing anything.
  s.agent->kill9();
  CHECK(s.display.retained_value(s.topic("kitchen", "auth/code")).has_value());
  // The broker drops the retained code and the pending auth/state when the code expires.
  CHECK(poll_until(
      [&] {
        return !s.display.retained_value(s.topic("kitchen", "auth/code"), 2s).has_value() &&
               !s.display.retained_value(s.topic("kitchen", "auth/state"), 2s).has_value();
      },
      10s));
  CHECK(seconds_until(json_str(code.json(), "expires_at")) <= 1);
}

TEST_CASE("mqtt5: in MQTT 3.1.1 mode (version: 4) a 3.1.1 display signs in end to end") {
  Scenario s({.mqtt_extra = "version: 4\n"});
  ProbeOptions options;
  options.url = s.broker.url();
  options.version = 4;
  MqttProbe v4(options);

  // What a 3.1.1 display sees at start: online, bridge/info, signed_out.
  v4.wait_for("graph2mqtt/bridge/state",
              [](const Message& m) { return m.payload == R"({"state":"online"})"; });
  auto info = v4.wait_for("graph2mqtt/bridge/info").json();
  CHECK(json_str(info, "base_topic") == "graph2mqtt");
  v4.wait_for_json("graph2mqtt/kitchen/auth/state",
                   [](const rapidjson::Value& v) { return json_str(v, "state") == "signed_out"; });

  // login over 3.1.1: the reply on the fixed topic, with the code.
  const auto since = v4.mark();
  auto reply = v4.request("login", R"({"account":"kitchen","transaction":"v4-1"})");
  REQUIRE(is_ok_reply(reply));
  CHECK(transaction_of(reply) == R"("v4-1")");
  CHECK(json_str(reply["data"], "state") == "pending");
  const std::string user_code = json_str(reply["data"]["code"], "user_code");
  REQUIRE(user_code.size() == 9);
  auto code = v4.wait_for_json(
      "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      since);
  CHECK(json_str(code.json(), "user_code") == user_code);
  CHECK(code.qos == 1);
  // A 3.1.1 agent publishes no MQTT 5 properties (the v5 display sees none either).
  auto code_v5 = s.display.wait_for_json("graph2mqtt/kitchen/auth/code",
                                         [](const rapidjson::Value& v) { return v.IsObject(); });
  CHECK_FALSE(code_v5.message_expiry.has_value());

  // A v5 request with a response topic: a 3.1.1 agent cannot see it, so the reply goes to the
  // fixed topic only.
  {
    const auto mark = s.display.mark();
    s.display.publish(Outgoing{.topic = "graph2mqtt/bridge/request/status",
                               .payload = R"({"transaction":"v4-2"})",
                               .response_topic = "displays/v5/replies",
                               .correlation_data = "c"});
    auto r = wait_reply(s, "status", R"("v4-2")", mark).json();
    CHECK(is_ok_reply(r));
  }

  // The user approves: signed_in, the code cleared, the resources published.
  s.simulator.approve(user_code);
  auto state = v4.wait_for_json(
      "graph2mqtt/kitchen/auth/state",
      [](const rapidjson::Value& v) { return json_str(v, "state") == "signed_in"; }, 15s, since);
  CHECK(json_str(state.json()["user"], "name") == "Adele Vance");
  v4.wait_for(
      "graph2mqtt/kitchen/auth/code", [](const Message& m) { return m.payload.empty(); }, 10s,
      since);
  v4.wait_for_json(
      "graph2mqtt/kitchen/graph/presence", [](const rapidjson::Value& v) { return v.IsObject(); },
      10s, since);

  // The retained state a new 3.1.1 display gets.
  std::map<std::string, std::string> retained;
  for (const auto& m : v4.fetch_retained("graph2mqtt/#")) retained[m.topic] = m.payload;
  CHECK(retained["graph2mqtt/bridge/state"] == R"({"state":"online"})");
  REQUIRE(retained.count("graph2mqtt/kitchen/auth/state") == 1);
  CHECK(json_str(parse_json(retained["graph2mqtt/kitchen/auth/state"]), "state") == "signed_in");
  CHECK(retained.count("graph2mqtt/kitchen/auth/code") == 0);
  REQUIRE(retained.count("graph2mqtt/kitchen/graph/presence") == 1);
  CHECK(json_str(parse_json(retained["graph2mqtt/kitchen/graph/presence"]), "availability") ==
        "Available");
  REQUIRE(retained.count("graph2mqtt/kitchen/graph/me") == 1);

  // status and logout over 3.1.1.
  auto status = v4.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_in");
  auto logout = v4.request("logout", "{}");
  REQUIRE(is_ok_reply(logout));
  CHECK(json_str(logout["data"], "reason") == "logout");

  // A clean shutdown publishes offline (and the will is set for a crash).
  const auto before_stop = v4.mark();
  CHECK(s.agent->stop() == 0);
  v4.wait_for(
      "graph2mqtt/bridge/state",
      [](const Message& m) { return m.payload == R"({"state":"offline"})"; }, 5s, before_stop);
}
