// Home Assistant device-based discovery payloads and the start-up plan (docs/mqtt-api.md "Home
// Assistant").
#include <doctest/doctest.h>

#include <string>

#include "config/config.h"
#include "homeassistant/discovery.h"
#include "json/json.h"

using namespace g2m;

namespace {

Config config_with(const std::string& resources, bool enabled = true,
                   const std::string& base = "graph2mqtt") {
  return parse_config("mqtt:\n  server: mqtt://localhost\n  base_topic: " + base +
                          "\nhomeassistant:\n  enabled: " + (enabled ? "true" : "false") +
                          "\naccounts:\n  kitchen:\n    client_id: "
                          "00000000-0000-0000-0000-000000000001\n    resources:\n" +
                          resources,
                      "config.yaml");
}

const std::string kResources =
    "      presence: { path: \"/me/presence?$select=availability\" }\n"
    "      today: { path: /me/events, ha_state: \"{{ value_json.value[0].subject }}\" }\n"
    "      me: { path: /me }\n";

rapidjson::Document device(const Config& c, const std::string& node) {
  for (const auto& [topic, payload] : discovery_messages(c)) {
    if (topic == "homeassistant/device/" + node + "/config") return *json::parse_object(payload);
  }
  FAIL("no device config for " << node);
  return {};
}

std::string str(const rapidjson::Value& v, const char* key) {
  return json::get_string(v, key).value_or("<none>");
}

}  // namespace

TEST_CASE("discovery: one device config per account and one for the bridge") {
  const auto messages = discovery_messages(config_with(kResources));
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].first == "homeassistant/device/graph2mqtt_bridge/config");
  CHECK(messages[1].first == "homeassistant/device/graph2mqtt_kitchen/config");
  CHECK(discovery_messages(config_with(kResources, false)).empty());
}

TEST_CASE("discovery: device, origin and availability of an account's device") {
  const auto d = device(config_with(kResources), "graph2mqtt_kitchen");
  CHECK(std::string(d["device"]["identifiers"][0].GetString()) == "graph2mqtt_kitchen");
  CHECK(str(d["device"], "name") == "graph2mqtt kitchen");
  CHECK(str(d["device"], "via_device") == "graph2mqtt_bridge");
  CHECK(str(d["device"], "manufacturer") == "graph2mqtt");
  CHECK(str(d["device"], "model") == "Microsoft 365 sign-in");
  CHECK(d["device"].HasMember("sw_version"));
  CHECK(str(d["origin"], "name") == "graph2mqtt");
  CHECK(d["origin"].HasMember("sw_version"));
  CHECK(d["origin"].HasMember("support_url"));
  CHECK(str(d["availability"][0], "topic") == "graph2mqtt/bridge/state");
  const auto& c = d["components"];
  for (const char* key : {"auth_state", "qr", "sign_in", "sign_in_browser", "sign_out",
                          "graph_presence", "graph_today", "graph_me"}) {
    INFO(key);
    REQUIRE(c.HasMember(key));
    CHECK(str(c[key], "unique_id") == std::string("graph2mqtt_kitchen_") + key);
    CHECK(str(c[key], "object_id") == std::string("graph2mqtt_kitchen_") + key);
    CHECK(str(c[key], "default_entity_id") ==
          str(c[key], "platform") + ".graph2mqtt_kitchen_" + key);
    CHECK(c[key].HasMember("name"));
  }
}

TEST_CASE("discovery: the sign-in state is an enum sensor, the QR code an image") {
  const auto d = device(config_with(kResources), "graph2mqtt_kitchen");
  const auto& s = d["components"]["auth_state"];
  CHECK(str(s, "platform") == "sensor");
  CHECK(str(s, "device_class") == "enum");
  CHECK(json::to_string(s["options"]) == R"(["signed_out","pending","signed_in"])");
  CHECK(str(s, "state_topic") == "graph2mqtt/kitchen/auth/state");
  CHECK(str(s, "value_template") == "{{ value_json.state }}");
  CHECK(str(s, "json_attributes_topic") == "graph2mqtt/kitchen/auth/state");
  const auto& q = d["components"]["qr"];
  CHECK(str(q, "platform") == "image");
  CHECK(str(q, "image_topic") == "graph2mqtt/kitchen/auth/qr");
  CHECK(str(q, "content_type") == "image/png");
}

TEST_CASE("discovery: three buttons in the config category send the bridge requests") {
  const auto d = device(config_with(kResources), "graph2mqtt_kitchen");
  const auto& c = d["components"];
  struct {
    const char* key;
    const char* topic;
    const char* press;
  } const buttons[] = {
      {"sign_in", "graph2mqtt/bridge/request/login", R"({"account":"kitchen"})"},
      {"sign_in_browser", "graph2mqtt/bridge/request/login",
       R"({"account":"kitchen","method":"browser"})"},
      {"sign_out", "graph2mqtt/bridge/request/logout", R"({"account":"kitchen"})"},
  };
  for (const auto& b : buttons) {
    INFO(b.key);
    CHECK(str(c[b.key], "platform") == "button");
    CHECK(str(c[b.key], "entity_category") == "config");
    CHECK(str(c[b.key], "command_topic") == b.topic);
    CHECK(str(c[b.key], "payload_press") == b.press);
  }
}

TEST_CASE("discovery: resource sensors: state rules, bounded attributes, signed-in availability") {
  const auto d = device(config_with(kResources), "graph2mqtt_kitchen");
  const auto& c = d["components"];
  CHECK(str(c["graph_presence"], "value_template") == "{{ value_json.availability }}");
  CHECK(str(c["graph_today"], "value_template") == "{{ value_json.value[0].subject }}");
  const std::string count = str(c["graph_me"], "value_template");
  CHECK(count.find("| length") != std::string::npos);
  CHECK(count.find("'ok'") != std::string::npos);
  for (const char* key : {"graph_presence", "graph_today", "graph_me"}) {
    INFO(key);
    const auto& r = c[key];
    CHECK(str(r, "platform") == "sensor");
    CHECK(str(r, "state_topic") == std::string("graph2mqtt/kitchen/graph/") + (key + 6));
    CHECK(str(r, "json_attributes_topic") == str(r, "state_topic"));
    CHECK(str(r, "json_attributes_template").find("16000") != std::string::npos);
    CHECK(str(r, "availability_mode") == "all");
    REQUIRE(r["availability"].Size() == 2);
    CHECK(str(r["availability"][0], "topic") == "graph2mqtt/bridge/state");
    CHECK(str(r["availability"][1], "topic") == "graph2mqtt/kitchen/auth/state");
    CHECK(str(r["availability"][1], "value_template").find("signed_in") != std::string::npos);
  }
}

TEST_CASE("discovery: the bridge device carries a diagnostic connectivity sensor") {
  const auto d = device(config_with(kResources), "graph2mqtt_bridge");
  CHECK(std::string(d["device"]["identifiers"][0].GetString()) == "graph2mqtt_bridge");
  const auto& s = d["components"]["connectivity"];
  CHECK(str(s, "platform") == "binary_sensor");
  CHECK(str(s, "device_class") == "connectivity");
  CHECK(str(s, "entity_category") == "diagnostic");
  CHECK(str(s, "state_topic") == "graph2mqtt/bridge/state");
  CHECK(str(s, "payload_on") == "online");
  CHECK(str(d["availability"][0], "topic") == "graph2mqtt/bridge/state");
}

TEST_CASE("discovery: a / in the base topic becomes _ in ids, entity ids are lower case") {
  const auto c = config_with(kResources, true, "Home/G2M");
  const auto messages = discovery_messages(c);
  CHECK(messages[1].first == "homeassistant/device/Home_G2M_kitchen/config");
  const auto d = *json::parse_object(messages[1].second);
  CHECK(str(d["components"]["qr"], "unique_id") == "Home_G2M_kitchen_qr");
  CHECK(str(d["components"]["qr"], "default_entity_id") == "image.home_g2m_kitchen_qr");
  CHECK(str(d["availability"][0], "topic") == "Home/G2M/bridge/state");
}

TEST_CASE("discovery: a config is the agent's own when its availability names B/bridge/state") {
  CHECK(is_own_discovery_config(R"({"availability":[{"topic":"graph2mqtt/bridge/state"}]})",
                                "graph2mqtt"));
  CHECK(is_own_discovery_config(R"({"avty":[{"t":"graph2mqtt/bridge/state"}]})", "graph2mqtt"));
  CHECK(is_own_discovery_config(R"({"avty_t":"graph2mqtt/bridge/state"})", "graph2mqtt"));
  CHECK(is_own_discovery_config(
      R"({"cmps":{"x":{"p":"sensor","availability":[{"topic":"graph2mqtt/bridge/state"}]}}})",
      "graph2mqtt"));
  CHECK_FALSE(is_own_discovery_config(R"({"availability":[{"topic":"other/bridge/state"}]})",
                                      "graph2mqtt"));
  CHECK_FALSE(
      is_own_discovery_config(R"({"state_topic":"graph2mqtt/bridge/state"})", "graph2mqtt"));
  CHECK_FALSE(is_own_discovery_config("not json", "graph2mqtt"));
}

TEST_CASE("discovery plan: per-entity configs still configured are migrated, the rest cleared") {
  const std::string own = R"({"availability":[{"topic":"graph2mqtt/bridge/state"}]})";
  const std::string other = R"({"availability":[{"topic":"other/bridge/state"}]})";
  RetainedConfigs retained = {
      {"homeassistant/sensor/graph2mqtt_kitchen/auth_state/config", own},
      {"homeassistant/button/graph2mqtt_kitchen/sign_in/config", own},
      {"homeassistant/sensor/graph2mqtt_kitchen/graph_presence/config", own},
      {"homeassistant/sensor/graph2mqtt_kitchen/graph_gone/config", own},  // resource removed
      {"homeassistant/sensor/graph2mqtt_hall/auth_state/config", own},     // account removed
      {"homeassistant/device/graph2mqtt_hall/config", own},                // account removed
      {"homeassistant/sensor/other_kitchen/auth_state/config", other},     // another agent's
      {"homeassistant/light/zigbee/config", R"({"name":"lamp"})"},         // someone else's
  };
  const auto plan = plan_discovery(config_with(kResources), retained);
  CHECK(plan.migrate ==
        std::vector<std::string>{"homeassistant/button/graph2mqtt_kitchen/sign_in/config",
                                 "homeassistant/sensor/graph2mqtt_kitchen/auth_state/config",
                                 "homeassistant/sensor/graph2mqtt_kitchen/graph_presence/config"});
  CHECK(plan.clear ==
        std::vector<std::string>{"homeassistant/device/graph2mqtt_hall/config",
                                 "homeassistant/sensor/graph2mqtt_hall/auth_state/config",
                                 "homeassistant/sensor/graph2mqtt_kitchen/graph_gone/config"});
  CHECK(plan.publish.size() == 2);

  SUBCASE("with discovery disabled every config of its own is cleared, none published") {
    const auto off = plan_discovery(config_with(kResources, false), retained);
    CHECK(off.migrate.empty());
    CHECK(off.clear.size() == 6);
    CHECK(off.publish.empty());
  }
}

TEST_CASE("discovery plan: a component the configuration dropped is sent platform-only once") {
  const auto before = config_with(kResources);
  const auto after = config_with("      me: { path: /me }\n");
  const std::string old_device = discovery_messages(before)[1].second;
  const std::string topic = "homeassistant/device/graph2mqtt_kitchen/config";
  const auto plan = plan_discovery(after, {{topic, old_device}});
  CHECK(plan.clear.empty());
  REQUIRE(plan.publish.size() == 2);
  const auto d = *json::parse_object(plan.publish[1].second);
  const auto& c = d["components"];
  CHECK(json::to_string(c["graph_presence"]) == R"({"platform":"sensor"})");
  CHECK(json::to_string(c["graph_today"]) == R"({"platform":"sensor"})");
  CHECK(c["graph_me"].HasMember("state_topic"));
  // The next start finds the platform-only entries: Home Assistant has removed them already.
  const auto again = plan_discovery(after, {{topic, plan.publish[1].second}});
  const auto d2 = *json::parse_object(again.publish[1].second);
  CHECK_FALSE(d2["components"].HasMember("graph_presence"));
  CHECK(d2["components"].HasMember("graph_me"));
}

TEST_CASE("discovery: resource sensors have readable names, from the Graph path and their own") {
  CHECK(resource_display_name("presence", "/me/presence?$select=availability") == "Presence");
  CHECK(resource_display_name("me", "/me") == "Profile");
  CHECK(resource_display_name("today", "/me/calendarView?startDateTime={today}") ==
        "Calendar today");
  CHECK(resource_display_name("events", "/me/events") == "Calendar");
  CHECK(resource_display_name("unread", "/me/mailFolders/inbox/messages") == "Mail unread");
  CHECK(resource_display_name("todo", "/me/todo/lists") == "Tasks todo");
  CHECK(resource_display_name("boss", "/users/ceo@contoso.com/presence") == "Presence boss");
  CHECK(resource_display_name("boss_profile", "/users/ceo@contoso.com") == "Profile boss profile");
  CHECK(resource_display_name("next_meeting", "/me/insights/used") == "Next meeting");
  const auto d = device(config_with(kResources), "graph2mqtt_kitchen");
  CHECK(str(d["components"]["graph_presence"], "name") == "Presence");
  CHECK(str(d["components"]["graph_today"], "name") == "Calendar today");
  CHECK(str(d["components"]["graph_me"], "name") == "Profile");
  CHECK(str(d["components"]["sign_in"], "name") == "Sign in");
  CHECK(str(d["components"]["sign_in_browser"], "name") == "Sign in (browser)");
  CHECK(str(d["components"]["sign_out"], "name") == "Sign out");
  CHECK(str(d["components"]["auth_state"], "name") == "Sign-in state");
}
