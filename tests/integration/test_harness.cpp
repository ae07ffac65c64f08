// Self-tests of the integration-test harness: what it offers works against a real Mosquitto,
// before any test of the agent relies on it.
#include <future>

#include <doctest/doctest.h>

#include "harness.h"

using namespace g2m::test;

namespace {

bool is_state(const rapidjson::Value& v, const char* state) {
  return json_str(v, "state") == state;
}

}  // namespace

TEST_CASE("harness: topic filters match like a broker's") {
  CHECK(topic_matches("#", "a/b"));
  CHECK(topic_matches("a/#", "a"));
  CHECK(topic_matches("a/+/c", "a/b/c"));
  CHECK_FALSE(topic_matches("a/+", "a/b/c"));
  CHECK_FALSE(topic_matches("#", "$SYS/broker/uptime"));
  CHECK(topic_matches("g2m/bridge/state", "g2m/bridge/state"));
  CHECK_FALSE(topic_matches("g2m/bridge/state", "g2m/bridge/info"));
}

TEST_CASE("harness: a process's exit status and log are captured") {
  TempDir tmp;
  Process quick({"/bin/sh", "-c", "echo hello from $G2M_HARNESS_VAR; exit 3"}, tmp / "quick.log",
                {{"G2M_HARNESS_VAR", "the test"}});
  CHECK(quick.wait_exit(10s) == 3);
  CHECK_FALSE(quick.running());
  CHECK(quick.log_text() == "hello from the test\n");

  Process slow({"sleep", "600"}, tmp / "slow.log");
  CHECK(slow.running());
  CHECK_FALSE(slow.wait_exit(0ms));
  slow.terminate(SIGTERM);
  CHECK(slow.wait_exit(10s) == 128 + SIGTERM);

  Process missing({"/nonexistent/program"}, tmp / "missing.log");
  CHECK(missing.wait_exit(10s) == 127);
}

TEST_CASE("harness: the test PKI is made by scripts/make-test-ca") {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  for (const auto& file : {pki.ca, pki.server_cert, pki.server_key, pki.client_cert, pki.client_key,
                           pki.other_ca, pki.other_server_cert, pki.other_server_key}) {
    CHECK_MESSAGE(std::filesystem::exists(file), file);
  }
}

TEST_CASE("harness: a retained message reaches a fresh subscriber, an empty one clears it") {
  Mosquitto broker;
  MqttProbe display(broker);
  display.publish("harness/retained", R"({"state":"online"})", true);
  const Message seen = display.wait_for_json(
      "harness/retained", [](const rapidjson::Value& v) { return is_state(v, "online"); });
  CHECK_FALSE(seen.retained);  // live delivery to an existing subscriber

  CHECK(display.retained_value("harness/retained") == R"({"state":"online"})");
  MqttProbe late(broker);
  const Message replayed = late.wait_for("harness/retained");
  CHECK(replayed.retained);
  CHECK(replayed.payload == R"({"state":"online"})");

  display.publish("harness/other", "x", true);
  const auto all = display.fetch_retained("harness/#");
  CHECK(all.size() == 2);

  const std::size_t mark = display.mark();
  display.publish("harness/retained", "", true);
  CHECK(display.wait_for("harness/retained", {}, 10s, mark).payload.empty());
  CHECK_FALSE(display.retained_value("harness/retained"));
  CHECK(display.last("harness/retained")->payload.empty());
  CHECK(display.messages("harness/retained").size() == 2);
}

TEST_CASE("harness: mosquitto restarts on the same port and the probe comes back") {
  Mosquitto broker;
  const int port = broker.port();
  MqttProbe display(broker);
  display.publish("harness/before", "1", true);
  display.wait_for("harness/before");

  const std::size_t connects = display.connects();
  broker.kill9();
  CHECK_FALSE(broker.running());
  broker.start();
  CHECK(broker.port() == port);
  display.wait_connects(connects + 1);
  CHECK(display.connected());

  // persistence false: the retained store died with the broker.
  CHECK_FALSE(display.retained_value("harness/before"));
  const std::size_t mark = display.mark();
  display.publish("harness/after", "2");
  CHECK(display.wait_for("harness/after", {}, 10s, mark).payload == "2");

  const std::size_t again = display.connects();
  broker.stop();
  broker.start();
  display.wait_connects(again + 1);
  display.sync();
}

TEST_CASE("harness: a password-protected broker refuses a wrong password with a clear error") {
  Mosquitto broker(MosquittoOptions{.users = {{"display", "s3cret"}, {"agent", "other"}}});
  const auto wrong = try_connect({.url = broker.url(), .username = "display", .password = "bad"});
  REQUIRE(wrong);
  MESSAGE("wrong password: " << *wrong);
  CHECK(wrong->find("Not authorized") != std::string::npos);
  const auto anonymous = try_connect({.url = broker.url()});
  CHECK(anonymous);
  CHECK_FALSE(try_connect({.url = broker.url(), .username = "display", .password = "s3cret"}));

  MqttProbe display({.url = broker.url(), .username = "display", .password = "s3cret"});
  display.sync();
}

TEST_CASE("harness: the ACL of the broker applies to the probe") {
  Mosquitto broker(MosquittoOptions{
      .users = {{"display", "d"}, {"agent", "a"}},
      .acl = "user agent\ntopic readwrite #\n\nuser display\ntopic read graph2mqtt/#\n"});
  MqttProbe agent({.url = broker.url(), .username = "agent", .password = "a"});
  MqttProbe display(
      {.url = broker.url(), .filters = {"graph2mqtt/#"}, .username = "display", .password = "d"});
  agent.publish("graph2mqtt/bridge/state", R"({"state":"online"})", true);
  display.wait_for_json("graph2mqtt/bridge/state",
                        [](const rapidjson::Value& v) { return is_state(v, "online"); });
  const auto denied = display.try_publish({.topic = "graph2mqtt/bridge/request/logout"});
  REQUIRE(denied);
  CHECK(denied->find("Not authorized") != std::string::npos);
  agent.sync();
  CHECK(agent.messages("graph2mqtt/bridge/request/#").empty());
}

TEST_CASE("harness: the TLS listener works with the test CA, and a client certificate") {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Mosquitto broker(MosquittoOptions{.tls = pki});
  MqttProbe display({.url = broker.tls_url(), .ca = pki.ca});
  MqttProbe plain(broker);
  plain.publish("harness/tls", "over plain");
  CHECK(display.wait_for("harness/tls").payload == "over plain");

  const auto wrong_ca = try_connect({.url = broker.tls_url(), .ca = pki.other_ca});
  REQUIRE(wrong_ca);
  MESSAGE("wrong CA: " << *wrong_ca);

  Mosquitto strict(MosquittoOptions{.tls = pki, .require_client_cert = true});
  CHECK(try_connect({.url = strict.tls_url(), .ca = pki.ca}));
  const auto with_cert = try_connect(
      {.url = strict.tls_url(), .ca = pki.ca, .cert = pki.client_cert, .key = pki.client_key});
  CHECK_MESSAGE(!with_cert, with_cert.value_or(""));
}

TEST_CASE("harness: the websockets listener works") {
  Mosquitto broker(MosquittoOptions{.websockets = true});
  MqttProbe display({.url = broker.ws_url()});
  MqttProbe plain(broker);
  plain.publish("harness/ws", "hello");
  CHECK(display.wait_for("harness/ws").payload == "hello");
}

TEST_CASE("harness: MQTT 5 properties are recorded, and a 3.1.1 probe works") {
  Mosquitto broker;
  MqttProbe v5(broker);
  MqttProbe v311({.url = broker.url(), .version = 4});
  v5.publish(Outgoing{.topic = "harness/props",
                      .payload = "p",
                      .retain = true,
                      .response_topic = "harness/reply",
                      .correlation_data = std::string("c\0d", 3),
                      .message_expiry = 300});
  const Message m = v5.wait_for("harness/props");
  CHECK(m.qos == 1);
  CHECK(m.response_topic == "harness/reply");
  CHECK(m.correlation_data == std::string("c\0d", 3));
  REQUIRE(m.message_expiry);
  CHECK(*m.message_expiry <= 300);
  CHECK(*m.message_expiry > 250);

  const Message old = v311.wait_for("harness/props");
  CHECK_FALSE(old.message_expiry);
  CHECK(old.payload == "p");
  v311.publish("harness/from311", "x", false, 0);
  CHECK(v5.wait_for("harness/from311").qos == 0);
}

TEST_CASE("harness: request() and request_v5() match their replies") {
  Mosquitto broker;
  MqttProbe display(broker, "g2m");
  // A stand-in agent that answers two requests, the second one over MQTT 5 request/response.
  auto responder = std::async(std::launch::async, [&broker]() -> std::string {
    try {
      MqttProbe agent(broker, "g2m");
      agent.publish("g2m/harness/ready", "", false);
      const Message first = agent.wait_for("g2m/bridge/request/status");
      // A reply for somebody else first: request() must skip it.
      agent.publish("g2m/bridge/response/status", R"({"status":"ok","transaction":"other"})");
      const auto request = first.json();
      agent.publish("g2m/bridge/response/status", R"({"status":"ok","data":{},"transaction":)" +
                                                      to_json(request["transaction"]) + "}");
      const Message second = agent.wait_for("g2m/bridge/request/login");
      agent.publish(Outgoing{.topic = *second.response_topic,
                             .payload = R"({"status":"ok"})",
                             .correlation_data = second.correlation_data});
      return "";
    } catch (...) {
      return "the responder failed";
    }
  });
  display.wait_for("g2m/harness/ready");
  const auto reply = display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  CHECK(reply.HasMember("data"));
  const Message v5 =
      display.request_v5("login", R"({"account":"kitchen"})", "display/replies/1", "corr-1");
  CHECK(v5.topic == "display/replies/1");
  CHECK(v5.correlation_data == "corr-1");
  CHECK(responder.get().empty());
}

TEST_CASE("harness: the agent config names the broker, the simulator and the CA") {
  AgentConfig config;
  config.mqtt_server = "mqtt://127.0.0.1:1883";
  config.base_topic = "g2m";
  config.mqtt_extra = "version: 4\n";
  config.authority = "https://127.0.0.1:4443";
  config.graph = "https://127.0.0.1:4443/v1.0";
  config.ca = "/tmp/pki/ca.pem";
  config.accounts = "kitchen:\n  client_id: 00000000-0000-0000-0000-000000000001\n";
  CHECK(to_yaml(config, "/tmp/a/tokens") ==
        "mqtt:\n"
        "  server: mqtt://127.0.0.1:1883\n"
        "  base_topic: g2m\n"
        "  version: 4\n"
        "identity:\n"
        "  authority: https://127.0.0.1:4443\n"
        "  graph: https://127.0.0.1:4443/v1.0\n"
        "  ca: /tmp/pki/ca.pem\n"
        "storage:\n"
        "  dir: /tmp/a/tokens\n"
        "log:\n"
        "  level: debug\n"
        "accounts:\n"
        "  kitchen:\n"
        "    client_id: 00000000-0000-0000-0000-000000000001\n");
}

TEST_CASE("harness: the simulator starts and its counters answer" *
          doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki);
  CHECK(sim.https_port() > 0);
  CHECK(sim.http_port() > 0);
  const SimulatorCounters counters = sim.counters();
  INFO(counters.json);
  CHECK(counters.devicecode == 0);
  CHECK(counters.token == 0);
  CHECK(counters.interval_violations == 0);
  CHECK(sim.post("/_sim/approve", R"({"user_code":"NOSUCHCODE"})").status == 404);
}

TEST_CASE("harness: the agent comes online and goes offline on SIGTERM" *
          doctest::skip(!agent_available() || !simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Mosquitto broker;
  Simulator sim(pki);
  MqttProbe display(broker);
  Agent agent(agent_config(broker, sim, pki,
                           "kitchen:\n"
                           "  client_id: 00000000-0000-0000-0000-000000000001\n"));
  INFO(agent.log_text());
  display.wait_for_json(
      "graph2mqtt/bridge/state", [](const rapidjson::Value& v) { return is_state(v, "online"); },
      15s);
  const auto status = display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status, "status") == "ok");
  const std::size_t mark = display.mark();
  CHECK(agent.stop() == 0);
  display.wait_for_json(
      "graph2mqtt/bridge/state", [](const rapidjson::Value& v) { return is_state(v, "offline"); },
      10s, mark);
  CHECK(display.retained_value("graph2mqtt/bridge/state") == R"({"state":"offline"})");
}
