// Delivery on a stock Mosquitto (docs/mqtt-api.md "The connection to the broker"): the broker
// grants a client 20 QoS 1 messages in flight (MQTT 5 Receive Maximum); the agent must hand over
// the next message at each acknowledgement rather than leave Paho to find it at its 1-second poll
// (paho.mqtt.c#1404), which delivered ~20 messages a second: 1,000 accounts needed ~2 minutes to be
// on the broker. And the broker connection: the client id (a takeover is said so in the log).
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

namespace {

// A calendar resource whose body grows past the limit between two fetches: the first body is
// published, the second is refused with graph_error too_large, the first stays retained, and the
// broker connection never drops (a larger packet would make the broker close it, and the agent
// would send it again at every reconnection).
void check_too_large_refused(ScenarioOptions options) {
  const std::string topic = "graph2mqtt/kitchen/graph/today";
  options.accounts = std::string("kitchen:\n  client_id: ") + kClientId +
                     "\n  scopes: [User.Read, Calendars.Read]\n  resources:\n"
                     "    today: { path: \"/me/calendarView?startDateTime={now}&endDateTime="
                     "{now+1d}\", every: 1h }\n";
  options.simulator_args = {"--interval", "1", "--events", "2"};
  Scenario s(options);
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();
  const Message first = d.wait_for_json(
      topic, [](const rapidjson::Value& v) { return v.IsObject(); }, 15s, before);

  // 60 events make a body of about 25 KB.
  s.simulator.config(R"({"events":60,"page_size":100})");
  const std::size_t since = d.mark();
  d.request("refresh", R"({"account":"kitchen","resource":"today"})", 15s);
  const Message error = d.wait_for_json(
      s.topic("kitchen", "events"),
      [](const rapidjson::Value& v) {
        return json_str(v, "event") == "graph_error" && json_str(v, "resource") == "today";
      },
      15s, since);
  CHECK(json_str(error.json(), "code") == "too_large");

  // Still connected, still answering, the previous body still retained.
  const auto reply = d.request("status", R"({"account":"kitchen"})", 15s);
  CHECK(json_str(reply, "status") == "ok");
  d.sync();
  CHECK(d.retained_value(topic) == first.payload);
  for (const auto& m : d.messages("graph2mqtt/bridge/state")) {
    CHECK_MESSAGE(m.payload.find("offline") == std::string::npos, m.describe());
  }
  const std::string log = s.agent->log_text();
  CHECK_MESSAGE(log.find("connection lost") == std::string::npos, log);
  CHECK(s.agent->running());
}

}  // namespace

TEST_CASE(
    "mqtt: a Graph body larger than mqtt.max_message_size gets too_large, keeps the previous "
    "body and the connection") {
  if (!agent_available()) return;
  ScenarioOptions options;
  options.mqtt_extra = "max_message_size: 8KiB\n";
  check_too_large_refused(options);
}

TEST_CASE(
    "mqtt: a Graph body larger than the broker's Maximum Packet Size gets too_large, keeps the "
    "previous body and the connection") {
  if (!agent_available()) return;
  ScenarioOptions options;
  // What config/mosquitto.conf does with 10 MiB, smaller (the agent's default limit is 1 MiB).
  options.broker.extra_conf = "max_packet_size 12000\n";
  check_too_large_refused(options);
}
