// Home Assistant MQTT discovery (CONTRACT §4), seen from Home Assistant's side of the broker.
#include <doctest/doctest.h>

#include "scenario.h"

using namespace g2m::test;

namespace {
ScenarioOptions with_home_assistant() {
  ScenarioOptions o;
  o.extra = "homeassistant:\n  enabled: true\n  prefix: homeassistant\n";
  return o;
}

std::string availability_topics(const rapidjson::Value& config) {
  std::string out;
  for (const auto& a : config["availability"].GetArray()) out += json_str(a, "topic") + ";";
  return out;
}
}  // namespace

TEST_CASE(
    "home assistant: one device per account with state sensor, buttons and resource sensors") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  const std::string node = "graph2mqtt_kitchen";

  auto state = d.wait_for("homeassistant/sensor/" + node + "/auth_state/config").json();
  CHECK(json_str(state, "unique_id") == node + "_auth_state");
  CHECK(json_str(state, "state_topic") == "graph2mqtt/kitchen/auth/state");
  CHECK(json_str(state, "value_template") == "{{ value_json.state }}");
  CHECK(json_str(state, "json_attributes_topic") == "graph2mqtt/kitchen/auth/state");
  CHECK(json_str(state["device"], "name") == "graph2mqtt kitchen");
  CHECK(std::string(state["device"]["identifiers"][0].GetString()) == node);
  CHECK(availability_topics(state) == "graph2mqtt/bridge/state;");
  CHECK(json_str(state["availability"][0], "value_template").find("online") != std::string::npos);

  auto sign_in = d.wait_for("homeassistant/button/" + node + "/sign_in/config").json();
  CHECK(json_str(sign_in, "unique_id") == node + "_sign_in");
  CHECK(json_str(sign_in, "command_topic") == "graph2mqtt/bridge/request/login");
  CHECK(json_str(sign_in, "payload_press") == R"({"account":"kitchen"})");
  auto sign_out = d.wait_for("homeassistant/button/" + node + "/sign_out/config").json();
  CHECK(json_str(sign_out, "command_topic") == "graph2mqtt/bridge/request/logout");
  CHECK(json_str(sign_out, "payload_press") == R"({"account":"kitchen"})");

  auto presence = d.wait_for("homeassistant/sensor/" + node + "/graph_presence/config").json();
  CHECK(json_str(presence, "unique_id") == node + "_graph_presence");
  CHECK(json_str(presence, "state_topic") == "graph2mqtt/kitchen/graph/presence");
  CHECK(json_str(presence, "value_template") == "{{ value_json.availability }}");
  CHECK(json_str(presence, "availability_mode") == "all");
  CHECK(availability_topics(presence) == "graph2mqtt/bridge/state;graph2mqtt/kitchen/auth/state;");

  auto me = d.wait_for("homeassistant/sensor/" + node + "/graph_me/config").json();
  CHECK(json_str(me, "json_attributes_topic") == "graph2mqtt/kitchen/graph/me");
  CHECK(json_str(me, "device_class") == "timestamp");

  // All of them retained: Home Assistant finds them when it subscribes.
  CHECK(d.fetch_retained("homeassistant/#").size() == 5);
}

TEST_CASE("home assistant: discovery is re-published when Home Assistant says online") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  d.wait_for("homeassistant/sensor/graph2mqtt_kitchen/auth_state/config");
  const auto since = d.mark();
  d.publish("homeassistant/status", "online");
  auto again =
      d.wait_for("homeassistant/sensor/graph2mqtt_kitchen/auth_state/config", {}, 5s, since);
  CHECK_FALSE(again.payload.empty());
  d.wait_for("homeassistant/button/graph2mqtt_kitchen/sign_in/config", {}, 5s, since);
}

TEST_CASE("home assistant: pressing the sign-in button starts a sign-in") {
  Scenario s(with_home_assistant());
  auto& d = s.display;
  auto button = d.wait_for("homeassistant/button/graph2mqtt_kitchen/sign_in/config").json();
  const auto since = d.mark();
  // What Home Assistant does on a press: payload_press to command_topic, not retained.
  d.publish(json_str(button, "command_topic"), json_str(button, "payload_press"));
  s.wait_state("kitchen", "pending", since);
  auto code = d.wait_for_json(
      "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      since);
  CHECK(json_str(code.json(), "user_code").size() == 9);
}
