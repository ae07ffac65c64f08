// Delivery on a stock Mosquitto (CONTRACT §1 "Always"): the broker grants a client 20 QoS 1
// messages in flight (MQTT 5 Receive Maximum); the agent must hand over the next message at each
// acknowledgement rather than leave Paho to find it at its 1-second poll (paho.mqtt.c#1404),
// which delivered ~20 messages a second: 1,000 accounts needed ~2 minutes to be on the broker.
// And the broker connection: the client id (a takeover is said so in the log).
#include <doctest/doctest.h>

#include <set>

#include "scenario.h"

using namespace g2m::test;

namespace {

constexpr int kAccounts = 300;
// A generous deadline, not a speed requirement: at ~20 messages a second, the ~1,500 retained
// messages of 300 accounts (auth/state, auth/code and three graph/R each) needed 75 s.
constexpr auto kAllRetainedDeadline = 60s;

std::string account_name(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "a%03d", i);
  return name;
}

std::string many_accounts(int n) {
  std::string yaml;
  for (int i = 0; i < n; ++i) {
    yaml += account_name(i) + ":\n  client_id: " + kClientId +
            "\n  resources:\n"
            "    me: { path: /me, every: 1h }\n"
            "    presence: { path: /me/presence, every: 1h }\n"
            "    today: { path: /me/events, every: 1h }\n";
  }
  return yaml;
}

void check_untuned(const std::string& what, const std::string& conf) {
  for (const char* key :
       {"max_inflight_messages", "max_queued_messages", "max_inflight_bytes", "max_queued_bytes"}) {
    CHECK_MESSAGE(conf.find(key) == std::string::npos, what << " sets " << key);
  }
}

}  // namespace

TEST_CASE(
    "mqtt: the test broker and the shipped config/mosquitto.conf keep Mosquitto's flow "
    "control defaults") {
  Mosquitto broker;
  check_untuned("the harness's mosquitto.conf", read_file(broker.dir() / "mosquitto.conf"));
  const std::string shipped =
      read_file(std::filesystem::path(G2M_SOURCE_DIR) / "config" / "mosquitto.conf");
  REQUIRE_FALSE(shipped.empty());
  check_untuned("config/mosquitto.conf", shipped);
}

TEST_CASE(
    "mqtt: 300 accounts' retained state all reaches a stock Mosquitto, which grants 20 "
    "messages in flight") {
  if (!agent_available()) return;
  TempDir tmp("g2m-delivery");
  const Pki pki = make_pki(tmp / "pki");
  Mosquitto broker;
  Simulator simulator(pki, {"--interval", "1"});
  // Only bridge/#: a subscriber to everything would itself be flow-controlled by the broker.
  MqttProbe display(ProbeOptions{.url = broker.url(), .filters = {"graph2mqtt/bridge/#"}});
  AgentConfig config = agent_config(broker, simulator, pki, many_accounts(kAccounts));
  const auto started = SteadyClock::now();
  Agent agent(config);
  display.wait_for_json(
      "graph2mqtt/bridge/state",
      [](const rapidjson::Value& v) { return json_str(v, "state") == "online"; }, 60s);

  // Every account's auth/state is retained on the broker (the last ones set come last).
  std::set<std::string> missing;
  const bool all = poll_until(
      [&] {
        missing.clear();
        for (int i = 0; i < kAccounts; ++i) missing.insert(account_name(i));
        for (const auto& m : display.fetch_retained("graph2mqtt/+/auth/state", 20s)) {
          const auto json = try_parse_json(m.payload);
          if (json.HasParseError() || json_str(json, "state") != "signed_out") continue;
          missing.erase(m.topic.substr(std::string("graph2mqtt/").size(), 4));
        }
        return missing.empty();
      },
      kAllRetainedDeadline);
  MESSAGE(
      "all "
      << kAccounts << " auth/state retained "
      << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count()
      << " ms after the agent started");
  CHECK_MESSAGE(all, missing.size() << " accounts' auth/state missing, e.g. "
                                    << (missing.empty() ? "" : *missing.begin()) << "\n"
                                    << agent.log_text().substr(0, 4000));
  // The agent read the broker's window from its CONNACK.
  CHECK(agent.log_text().find("mqtt: the broker accepts 20 unacknowledged messages") !=
        std::string::npos);
  // And it still answers: a request goes through behind all of that.
  const auto reply = display.request("status", R"({"account":"a299"})", 20s);
  CHECK(json_str(reply, "status") == "ok");
}

TEST_CASE(
    "mqtt: when another client takes its client id, the agent says so in the log and "
    "backs off") {
  if (!agent_available()) return;
  ScenarioOptions options;
  options.mqtt_extra = "client_id: g2m-takeover-test\n";
  Scenario s(options);
  // A client connecting with the agent's id makes Mosquitto close the agent's connection (2.0.11
  // without a DISCONNECT; later versions with reason 142, session taken over). The intruder
  // reconnects at once whenever the agent takes the id back.
  MqttProbe intruder(ProbeOptions{
      .url = s.broker.url(), .filters = {"g2m-test/nothing"}, .client_id = "g2m-takeover-test"});
  const auto said_so = [&] {
    const std::string log = s.agent->log_text();
    return log.find("is another client using client id g2m-takeover-test?") != std::string::npos ||
           log.find("another client connected with client id g2m-takeover-test") !=
               std::string::npos;
  };
  REQUIRE_MESSAGE(poll_until(said_so, 30s), s.agent->log_text());
  CHECK(s.agent->running());
}
