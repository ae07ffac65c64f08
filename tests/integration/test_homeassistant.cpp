// Home Assistant MQTT device-based discovery (docs/mqtt-api.md "Home Assistant"), seen from Home
// Assistant's side of the broker: the configs, their re-publication, the migration of the
// per-entity configs of earlier versions and the clean-up of what the configuration no longer has.
#include <doctest/doctest.h>

#include "scenario.h"

using namespace g2m::test;

namespace {

const std::string kDevice = "homeassistant/device/graph2mqtt_kitchen/config";
const std::string kBridgeDevice = "homeassistant/device/graph2mqtt_bridge/config";

std::string home_assistant(bool enabled = true) {
  return std::string("homeassistant:\n  enabled: ") + (enabled ? "true" : "false") +
         "\n  prefix: homeassistant\n";
}

ScenarioOptions with_home_assistant() {
  ScenarioOptions o;
  o.extra = home_assistant();
  return o;
}

std::string availability_topics(const rapidjson::Value& config) {
  std::string out;
  for (const auto& a : config["availability"].GetArray()) out += json_str(a, "topic") + ";";
  return out;
}

// A device config that holds the component `key` with more than its platform.
Message wait_device(MqttProbe& d, const std::string& topic, std::size_t since = 0,
                    std::chrono::milliseconds timeout = 15s) {
  return d.wait_for_json(
      topic, [](const rapidjson::Value& v) { return v.HasMember("components"); }, timeout, since);
}

// What graph2mqtt before device-based discovery published: one config per entity.
std::string old_entity(const std::string& key, const std::string& base = "graph2mqtt") {
  return R"({"unique_id":")" + base + "_kitchen_" + key + R"(","object_id":")" + base +
         "_kitchen_" + key + R"(","name":")" + key + R"(","state_topic":")" + base +
         R"(/kitchen/auth/state","availability":[{"topic":")" + base +
         R"(/bridge/state","value_template":"{{ 'online' if value_json.state == 'online' else 'offline' }}"}],"availability_mode":"all","device":{"identifiers":[")" +
         base + R"(_kitchen"],"name":"graph2mqtt kitchen"}})";
}

const std::vector<std::string> kOldTopics = {
    "homeassistant/sensor/graph2mqtt_kitchen/auth_state/config",
    "homeassistant/button/graph2mqtt_kitchen/sign_in/config",
    "homeassistant/button/graph2mqtt_kitchen/sign_out/config",
    "homeassistant/sensor/graph2mqtt_kitchen/graph_me/config",
    "homeassistant/sensor/graph2mqtt_kitchen/graph_presence/config",
};

std::optional<Message> first_after(MqttProbe& d, const std::string& topic, std::size_t since,
                                   const std::function<bool(const Message&)>& match) {
  for (const auto& m : d.messages(topic)) {
    if (m.index >= since && match(m)) return m;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("home assistant: one device config per account with every component") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  const std::string node = "graph2mqtt_kitchen";
  auto device = wait_device(d, kDevice).json();
  CHECK(json_str(device["device"], "name") == "graph2mqtt kitchen");
  CHECK(std::string(device["device"]["identifiers"][0].GetString()) == node);
  CHECK(json_str(device["device"], "via_device") == "graph2mqtt_bridge");
  CHECK(json_str(device["device"], "manufacturer") == "graph2mqtt");
  CHECK_FALSE(json_str(device["device"], "sw_version").empty());
  CHECK(json_str(device["origin"], "name") == "graph2mqtt");
  CHECK_FALSE(json_str(device["origin"], "sw_version").empty());
  CHECK(json_str(device["origin"], "support_url").rfind("https://", 0) == 0);
  CHECK(availability_topics(device) == "graph2mqtt/bridge/state;");
  CHECK(json_str(device["availability"][0], "value_template").find("online") != std::string::npos);

  const auto& c = device["components"];
  for (const char* key : {"auth_state", "qr", "sign_in", "sign_in_browser", "sign_out", "graph_me",
                          "graph_presence"}) {
    INFO(key);
    REQUIRE(c.HasMember(key));
    CHECK(json_str(c[key], "unique_id") == node + "_" + key);
    CHECK(json_str(c[key], "object_id") == node + "_" + key);
    CHECK(json_str(c[key], "default_entity_id") ==
          json_str(c[key], "platform") + "." + node + "_" + key);
    CHECK_FALSE(json_str(c[key], "name").empty());
  }
  CHECK(c.MemberCount() == 7);

  const auto& state = c["auth_state"];
  CHECK(json_str(state, "platform") == "sensor");
  CHECK(json_str(state, "device_class") == "enum");
  REQUIRE(state["options"].Size() == 3);
  CHECK(std::string(state["options"][0].GetString()) == "signed_out");
  CHECK(std::string(state["options"][1].GetString()) == "pending");
  CHECK(std::string(state["options"][2].GetString()) == "signed_in");
  CHECK(json_str(state, "state_topic") == "graph2mqtt/kitchen/auth/state");
  CHECK(json_str(state, "value_template") == "{{ value_json.state }}");
  CHECK(json_str(state, "json_attributes_topic") == "graph2mqtt/kitchen/auth/state");

  CHECK(json_str(c["qr"], "platform") == "image");
  CHECK(json_str(c["qr"], "image_topic") == "graph2mqtt/kitchen/auth/qr");
  CHECK(json_str(c["qr"], "content_type") == "image/png");

  for (const char* key : {"sign_in", "sign_in_browser", "sign_out"}) {
    CHECK(json_str(c[key], "platform") == "button");
    CHECK(json_str(c[key], "entity_category") == "config");
  }
  CHECK(json_str(c["sign_in"], "command_topic") == "graph2mqtt/bridge/request/login");
  CHECK(json_str(c["sign_in"], "payload_press") == R"({"account":"kitchen"})");
  CHECK(json_str(c["sign_in_browser"], "command_topic") == "graph2mqtt/bridge/request/login");
  CHECK(json_str(c["sign_in_browser"], "payload_press") ==
        R"({"account":"kitchen","method":"browser"})");
  CHECK(json_str(c["sign_out"], "command_topic") == "graph2mqtt/bridge/request/logout");
  CHECK(json_str(c["sign_out"], "payload_press") == R"({"account":"kitchen"})");

  const auto& presence = c["graph_presence"];
  CHECK(json_str(presence, "state_topic") == "graph2mqtt/kitchen/graph/presence");
  CHECK(json_str(presence, "value_template") == "{{ value_json.availability }}");
  CHECK(json_str(presence, "availability_mode") == "all");
  CHECK(availability_topics(presence) == "graph2mqtt/bridge/state;graph2mqtt/kitchen/auth/state;");
  CHECK(json_str(presence["availability"][1], "value_template").find("signed_in") !=
        std::string::npos);
  const auto& me = c["graph_me"];
  CHECK(json_str(me, "json_attributes_topic") == "graph2mqtt/kitchen/graph/me");
  CHECK(json_str(me, "json_attributes_template").find("16000") != std::string::npos);
  CHECK(json_str(me, "value_template").find("'ok'") != std::string::npos);
  CHECK(json_str(me, "availability_mode") == "all");

  auto bridge = wait_device(d, kBridgeDevice).json();
  CHECK(std::string(bridge["device"]["identifiers"][0].GetString()) == "graph2mqtt_bridge");
  const auto& link = bridge["components"]["connectivity"];
  CHECK(json_str(link, "platform") == "binary_sensor");
  CHECK(json_str(link, "device_class") == "connectivity");
  CHECK(json_str(link, "entity_category") == "diagnostic");
  CHECK(json_str(link, "state_topic") == "graph2mqtt/bridge/state");
  CHECK(json_str(link, "unique_id") == "graph2mqtt_bridge_connectivity");
  CHECK(availability_topics(bridge) == "graph2mqtt/bridge/state;");

  // Both retained, and nothing else under the prefix: Home Assistant finds them when it
  // subscribes.
  const auto retained = d.fetch_retained("homeassistant/#");
  CHECK(retained.size() == 2);
}

TEST_CASE("home assistant: a resource's ha_state is the state template of its sensor") {
  ScenarioOptions o = with_home_assistant();
  o.accounts =
      std::string("kitchen:\n  client_id: ") + kClientId +
      "\n  resources:\n    me: { path: /me, ha_state: \"{{ value_json.displayName }}\" }\n";
  Scenario s(o);
  auto device = wait_device(s.display, kDevice).json();
  CHECK(json_str(device["components"]["graph_me"], "value_template") ==
        "{{ value_json.displayName }}");
}

TEST_CASE("home assistant: a / in the base topic becomes _ in every id") {
  ScenarioOptions o = with_home_assistant();
  o.base_topic = "home/g2m";
  Scenario s(o);
  auto device = wait_device(s.display, "homeassistant/device/home_g2m_kitchen/config").json();
  CHECK(json_str(device["components"]["qr"], "unique_id") == "home_g2m_kitchen_qr");
  CHECK(json_str(device["components"]["qr"], "image_topic") == "home/g2m/kitchen/auth/qr");
  CHECK(availability_topics(device) == "home/g2m/bridge/state;");
  wait_device(s.display, "homeassistant/device/home_g2m_bridge/config");
}

TEST_CASE("home assistant: discovery is re-published when Home Assistant says online") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  wait_device(d, kDevice);
  const auto since = d.mark();
  d.publish("homeassistant/status", "online");
  wait_device(d, kDevice, since, 5s);
  wait_device(d, kBridgeDevice, since, 5s);
}

TEST_CASE("home assistant: pressing the sign-in button starts a sign-in") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  auto device = wait_device(d, kDevice).json();
  const auto& button = device["components"]["sign_in"];
  const auto since = d.mark();
  // What Home Assistant does on a press: payload_press to command_topic, not retained.
  d.publish(json_str(button, "command_topic"), json_str(button, "payload_press"));
  s.wait_state("kitchen", "pending", since);
  auto code = d.wait_for_json(
      "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      since);
  CHECK(json_str(code.json(), "user_code").size() == 9);
}

TEST_CASE("home assistant: per-entity configs of an earlier version are migrated, then cleared") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  wait_device(d, kDevice);
  REQUIRE(s.agent->stop() == 0);
  // What an earlier graph2mqtt left on the broker, plus a resource since removed and another
  // agent's config (base topic `other`).
  for (const auto& topic : kOldTopics) d.publish(topic, old_entity("x"), true);
  const std::string removed = "homeassistant/sensor/graph2mqtt_kitchen/graph_gone/config";
  const std::string foreign = "homeassistant/sensor/other_kitchen/auth_state/config";
  d.publish(removed, old_entity("graph_gone"), true);
  d.publish(foreign, old_entity("auth_state", "other"), true);
  const auto since = d.mark();
  s.agent->start();
  s.wait_online(since);
  const auto device = wait_device(d, kDevice, since);

  for (const auto& topic : kOldTopics) {
    INFO(topic);
    // Home Assistant's order: migrate_discovery on the old topic, the device config, the clear.
    const auto migrate = first_after(d, topic, since, [](const Message& m) {
      return m.payload == R"({"migrate_discovery":true})";
    });
    REQUIRE(migrate);
    CHECK(migrate->index < device.index);
    const auto cleared = d.wait_for(
        topic, [](const Message& m) { return m.payload.empty(); }, 10s, since);
    CHECK(cleared.index > device.index);
    CHECK_FALSE(d.retained_value(topic));
  }
  // The removed resource's config is cleared, never migrated; another agent's is untouched.
  d.wait_for(
      removed, [](const Message& m) { return m.payload.empty(); }, 10s, since);
  CHECK_FALSE(first_after(d, removed, since, [](const Message& m) {
    return m.payload.find("migrate_discovery") != std::string::npos;
  }));
  CHECK_FALSE(d.retained_value(removed));
  CHECK(d.retained_value(foreign) == old_entity("auth_state", "other"));
  CHECK(d.retained_value(kDevice));
  // Each step waited for the broker, not for a deadline.
  const std::string log = read_file(s.agent->log_path());
  CHECK(log.find("migrating 5 per-entity") != std::string::npos);
  CHECK(log.find("did not") == std::string::npos);
}

TEST_CASE("home assistant: a restart without a resource or account removes their entities") {
  ScenarioOptions o = with_home_assistant();
  o.accounts = kitchen_account() + "hall:\n  client_id: " + kClientId + "\n";
  Scenario s(o);
  auto& d = s.display;
  wait_device(d, kDevice);
  const std::string hall = "homeassistant/device/graph2mqtt_hall/config";
  wait_device(d, hall);
  // Another agent's device on the same broker.
  const std::string foreign = "homeassistant/device/other_hall/config";
  const std::string foreign_payload =
      R"({"device":{"identifiers":["other_hall"]},"availability":[{"topic":"other/bridge/state"}],"components":{"x":{"platform":"sensor","unique_id":"x"}}})";
  d.publish(foreign, foreign_payload, true);

  REQUIRE(s.agent->stop() == 0);
  // kitchen without its presence resource; no hall.
  s.config.accounts =
      std::string("kitchen:\n  client_id: ") + kClientId +
      "\n  resources:\n    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n";
  s.agent->write_config(s.config);
  const auto since = d.mark();
  s.agent->start();
  s.wait_online(since);
  auto device = wait_device(d, kDevice, since).json();
  const auto& c = device["components"];
  // Home Assistant removes a component sent with its platform alone.
  REQUIRE(c.HasMember("graph_presence"));
  CHECK(c["graph_presence"].MemberCount() == 1);
  CHECK(json_str(c["graph_presence"], "platform") == "sensor");
  CHECK(c["graph_me"].HasMember("state_topic"));
  d.wait_for(
      hall, [](const Message& m) { return m.payload.empty(); }, 10s, since);
  CHECK_FALSE(d.retained_value(hall));
  CHECK(d.retained_value(foreign) == foreign_payload);
}

TEST_CASE("home assistant: a restart with enabled: false removes every entity of the agent") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  wait_device(d, kDevice);
  wait_device(d, kBridgeDevice);
  const std::string foreign = "homeassistant/sensor/other_kitchen/auth_state/config";
  d.publish(foreign, old_entity("auth_state", "other"), true);
  const std::string old = kOldTopics.front();
  d.publish(old, old_entity("auth_state"), true);

  REQUIRE(s.agent->stop() == 0);
  s.config.extra = home_assistant(false);
  s.agent->write_config(s.config);
  const auto since = d.mark();
  s.agent->start();
  s.wait_online(since);
  for (const auto& topic : {kDevice, kBridgeDevice, old}) {
    INFO(topic);
    d.wait_for(
        topic, [](const Message& m) { return m.payload.empty(); }, 10s, since);
    CHECK_FALSE(d.retained_value(topic));
  }
  CHECK(d.retained_value(foreign) == old_entity("auth_state", "other"));
  // Nothing is published or migrated.
  CHECK_FALSE(first_after(d, "homeassistant/#", since, [](const Message& m) {
    return m.payload.find("migrate_discovery") != std::string::npos ||
           m.payload.find("components") != std::string::npos;
  }));
}
