#include "homeassistant/discovery.h"

#include <algorithm>

#include "common/version.h"
#include "json/json.h"

namespace g2m {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Path without its query: `/me/presence?$select=x` is still a presence resource.
std::string route_of(const std::string& path) {
  return path.substr(0, path.find('?'));
}

void write_availability(json::Writer& w, const std::string& base, const std::string& account,
                        bool needs_sign_in) {
  w.Key("availability");
  w.StartArray();
  w.StartObject();
  json::Fields(w)
      .str("topic", base + "/bridge/state")
      .str("value_template", "{{ 'online' if value_json.state == 'online' else 'offline' }}");
  w.EndObject();
  if (needs_sign_in) {
    // Resource sensors show unavailable rather than stale data after a sign-out.
    w.StartObject();
    json::Fields(w)
        .str("topic", base + "/" + account + "/auth/state")
        .str("value_template", "{{ 'online' if value_json.state == 'signed_in' else 'offline' }}");
    w.EndObject();
  }
  w.EndArray();
  w.Key("availability_mode");
  w.String("all");
}

}  // namespace

std::string discovery_node_id(const std::string& base_topic, const std::string& account) {
  std::string id = base_topic + "_" + account;
  std::replace(id.begin(), id.end(), '/', '_');
  return id;
}

std::vector<std::pair<std::string, std::string>> discovery_messages(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string& base = config.mqtt.base_topic;
  const std::string& prefix = config.homeassistant_prefix;
  for (const auto& account : config.accounts) {
    const std::string node = discovery_node_id(base, account.name);
    const std::string account_topic = base + "/" + account.name;

    auto entity = [&](const std::string& component, const std::string& key, const auto& fill,
                      bool needs_sign_in) {
      rapidjson::StringBuffer buffer;
      json::Writer w(buffer);
      w.StartObject();
      json::Fields f(w);
      f.str("unique_id", node + "_" + key).str("object_id", node + "_" + key);
      fill(f);
      write_availability(w, base, account.name, needs_sign_in);
      w.Key("device");
      w.StartObject();
      json::Fields(w).strings("identifiers", {node});
      json::Fields(w)
          .str("name", "graph2mqtt " + account.name)
          .str("manufacturer", "graph2mqtt")
          .str("model", "Microsoft 365 sign-in")
          .str("sw_version", kVersion);
      w.EndObject();
      w.Key("origin");
      w.StartObject();
      json::Fields(w).str("name", "graph2mqtt").str("sw", kVersion);
      w.EndObject();
      w.EndObject();
      out.emplace_back(prefix + "/" + component + "/" + node + "/" + key + "/config",
                       std::string(buffer.GetString(), buffer.GetSize()));
    };

    entity(
        "sensor", "auth_state",
        [&](json::Fields& f) {
          f.str("name", "Sign-in state")
              .str("state_topic", account_topic + "/auth/state")
              .str("value_template", "{{ value_json.state }}")
              .str("json_attributes_topic", account_topic + "/auth/state")
              .str("icon", "mdi:account-key");
        },
        false);
    const std::string press =
        json::object([&](json::Fields& f) { f.str("account", account.name); });
    // The sign-in and sign-out buttons differ only in their request and label.
    auto button = [&](const char* key, const char* name, const char* action, const char* icon) {
      entity(
          "button", key,
          [&](json::Fields& f) {
            f.str("name", name)
                .str("command_topic", base + "/bridge/request/" + action)
                .str("payload_press", press)
                .num("qos", 1)
                .boolean("retain", false)
                .str("icon", icon);
          },
          false);
    };
    button("sign_in", "Sign in", "login", "mdi:login");
    button("sign_out", "Sign out", "logout", "mdi:logout");
    for (const auto& r : account.resources) {
      const std::string topic = account_topic + "/graph/" + r.name;
      const bool presence = ends_with(route_of(r.path), "/presence");
      entity(
          "sensor", "graph_" + r.name,
          [&](json::Fields& f) {
            f.str("name", r.name).str("state_topic", topic).str("json_attributes_topic", topic);
            if (presence) {
              f.str("value_template", "{{ value_json.availability }}")
                  .str("icon", "mdi:account-clock");
            } else {
              // Any other body is too large for a state: it goes to the attributes, and the state
              // is when it last arrived.
              f.str("value_template", "{{ now().isoformat() }}").str("device_class", "timestamp");
            }
          },
          true);
    }
  }
  return out;
}

}  // namespace g2m
