#include "homeassistant/discovery.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "common/version.h"
#include "json/json.h"

namespace g2m {

namespace {

// origin.support_url: where a Home Assistant user reads about the entities.
constexpr const char* kSupportUrl = "https://graph2mqtt.invalid/docs/home-assistant";

// Home Assistant keeps no attributes above 16 KiB (its recorder drops them); `| tojson` counts
// at least the bytes stored, so a margin under 16,384 is enough.
constexpr int kMaxAttributeBytes = 16000;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Path without its query: `/me/presence?$select=x` is still a presence resource.
std::string route_of(const std::string& path) {
  return path.substr(0, path.find('?'));
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What well-known Graph routes hold, in words; empty for the others.
std::string route_label(const std::string& path) {
  const std::string route = lower(route_of(path));
  if (ends_with(route, "/presence")) return "Presence";
  if (contains(route, "/calendarview") || contains(route, "/events") ||
      contains(route, "/calendar")) {
    return "Calendar";
  }
  if (contains(route, "/messages") || contains(route, "/mailfolders")) return "Mail";
  if (contains(route, "/todo") || contains(route, "/planner/tasks")) return "Tasks";
  if (contains(route, "/chats")) return "Chats";
  if (contains(route, "/joinedteams")) return "Teams";
  if (contains(route, "/photo")) return "Photo";
  if (contains(route, "/drive")) return "Files";
  const auto slash = route.find('/', 1);
  if (route == "/me" || (route.rfind("/users/", 0) == 0 && slash == 6 &&
                         route.find('/', slash + 1) == std::string::npos)) {
    return "Profile";
  }
  return "";
}

// `next_meeting` → "next meeting": separators become spaces.
std::string words_of(const std::string& name) {
  std::string out;
  for (char c : name) out += (c == '_' || c == '-') ? ' ' : c;
  return out;
}

// An entity id's object part: lower case letters, digits and single `_` (Home Assistant refuses
// anything else in `default_entity_id`).
std::string slug(const std::string& id) {
  std::string out;
  for (unsigned char c : id) {
    const bool keep = std::isalnum(c) != 0;
    if (keep) {
      out += static_cast<char>(std::tolower(c));
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// Keeps the first items of `value` that fit (and the other members of the body when they do):
// a calendar of 500 events would otherwise be dropped by Home Assistant as a whole.
std::string attributes_template() {
  // Home Assistant renders templates in Jinja's immutable sandbox: no pop() or append(), only
  // new values (dict(...), list + list, a namespace).
  const std::string limit = std::to_string(kMaxAttributeBytes);
  const std::string is_list =
      " is defined and value_json['value'] is sequence and "
      "value_json['value'] is not string and "
      "value_json['value'] is not mapping";
  return "{% set ns = namespace(listed=[], full=false) %}"
         "{% if value_json is mapping %}"
         "{% set rest = dict(value_json.items() | rejectattr('0', 'eq', 'value') | list) %}"
         "{% if (rest | tojson | length) > " +
         limit +
         " %}{% set rest = {} %}{% endif %}"
         "{% if value_json['value']" +
         is_list +
         " %}{% for item in value_json['value'] %}{% if not ns.full %}"
         "{% if (dict(rest, value=ns.listed + [item]) | tojson | length) <= " +
         limit +
         " %}{% set ns.listed = ns.listed + [item] %}{% else %}{% set ns.full = true %}{% endif %}"
         "{% endif %}{% endfor %}{{ dict(rest, value=ns.listed) | tojson }}"
         "{% else %}{{ rest | tojson }}{% endif %}"
         "{% else %}{}{% endif %}";
}

// The state of a resource sensor when the resource sets no `ha_state`: the number of items of a
// collection (`value`), else `ok`.
constexpr const char* kCountOrOk =
    "{{ value_json['value'] | length if value_json is mapping and value_json['value'] is "
    "defined and value_json['value'] is sequence and value_json['value'] is not string and "
    "value_json['value'] is not mapping "
    "else 'ok' }}";

// auth/state as attributes, plus `sign_in_url`, `user_code` and `verification_uri` lifted out
// of `code` (null when no sign-in waits), so a card can show them without a nested lookup.
constexpr const char* kAuthStateAttributes =
    "{% set c = value_json.code if value_json is mapping and value_json.code is mapping "
    "else {} %}"
    "{{ dict(value_json if value_json is mapping else {}, "
    "sign_in_url=c.get('sign_in_url'), user_code=c.get('user_code'), "
    "verification_uri=c.get('verification_uri')) "
    "| tojson }}";

void availability_entry(json::Writer& w, const std::string& topic, const std::string& state) {
  w.StartObject();
  json::Fields(w)
      .str("topic", topic)
      .str("value_template",
           "{{ 'online' if value_json.state == '" + state + "' else 'offline' }}");
  w.EndObject();
}

void bridge_availability(json::Writer& w, const std::string& base) {
  w.Key("availability");
  w.StartArray();
  availability_entry(w, base + "/bridge/state", "online");
  w.EndArray();
}

void origin(json::Writer& w) {
  w.Key("origin");
  w.StartObject();
  json::Fields(w)
      .str("name", "graph2mqtt")
      .str("sw_version", kVersion)
      .str("support_url", kSupportUrl);
  w.EndObject();
}

struct Component {
  std::string key;
  std::string platform;
  std::function<void(json::Writer&)> fill;  // the options besides platform and the ids
};

// One device config: `device`, `origin`, availability, then `components`, plus a platform-only
// entry for every component `previous` had that `components` lacks.
std::string device_config(const std::string& base, const std::string& node,
                          const std::function<void(json::Writer&)>& device,
                          const std::vector<Component>& components, const std::string* previous) {
  rapidjson::StringBuffer buffer;
  json::Writer w(buffer);
  w.StartObject();
  w.Key("device");
  w.StartObject();
  device(w);
  w.EndObject();
  origin(w);
  bridge_availability(w, base);
  w.Key("components");
  w.StartObject();
  std::set<std::string> keys;
  for (const auto& c : components) {
    keys.insert(c.key);
    json::write_key(w, c.key);
    w.StartObject();
    const std::string id = node + "_" + c.key;
    json::Fields(w)
        .str("platform", c.platform)
        .str("unique_id", id)
        .str("default_entity_id", c.platform + "." + slug(id))
        .str("object_id", slug(id));  // HA before 2026.4 reads this one instead
    c.fill(w);
    w.EndObject();
  }
  if (previous != nullptr) {
    if (auto old = json::parse_object(*previous)) {
      for (const char* member : {"components", "cmps"}) {
        const auto it = old->FindMember(member);
        if (it == old->MemberEnd() || !it->value.IsObject()) continue;
        for (const auto& entry : it->value.GetObject()) {
          const std::string key(entry.name.GetString(), entry.name.GetStringLength());
          if (keys.count(key) != 0 || !entry.value.IsObject()) continue;
          std::string platform = json::get_string(entry.value, "platform")
                                     .value_or(json::get_string(entry.value, "p").value_or(""));
          // Already platform-only: Home Assistant removed it when that config came.
          if (platform.empty() || entry.value.MemberCount() <= 1) continue;
          keys.insert(key);
          json::write_key(w, key);
          w.StartObject();
          json::Fields(w).str("platform", platform);
          w.EndObject();
        }
      }
    }
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string device_topic(const Config& config, const std::string& node) {
  return config.homeassistant_prefix + "/device/" + node + "/config";
}

std::vector<Component> account_components(const Config& config, const AccountConfig& account) {
  const std::string& base = config.mqtt.base_topic;
  const std::string account_topic = base + "/" + account.name;
  std::vector<Component> out;
  out.push_back({"auth_state", "sensor", [=](json::Writer& w) {
                   json::Fields(w)
                       .str("name", "Sign-in state")
                       .str("state_topic", account_topic + "/auth/state")
                       .str("value_template", "{{ value_json.state }}")
                       .str("device_class", "enum")
                       .strings("options", {"signed_out", "pending", "signed_in"})
                       // user, code, expires_at, reason, error: all of auth/state is small;
                       // the address to open and the code to type also at the top level.
                       .str("json_attributes_topic", account_topic + "/auth/state")
                       .str("json_attributes_template", kAuthStateAttributes)
                       .str("icon", "mdi:account-key");
                 }});
  out.push_back({"qr", "image", [=](json::Writer& w) {
                   json::Fields(w)
                       .str("name", "Sign-in QR code")
                       .str("image_topic", account_topic + "/auth/qr")
                       .str("content_type", "image/png");
                 }});
  auto button = [&](const char* key, const char* name, const char* action, std::string press,
                    const char* icon) {
    out.push_back({key, "button", [=](json::Writer& w) {
                     json::Fields(w)
                         .str("name", name)
                         .str("entity_category", "config")
                         .str("command_topic", base + "/bridge/request/" + action)
                         .str("payload_press", press)
                         .num("qos", 1)
                         .boolean("retain", false)
                         .str("icon", icon);
                   }});
  };
  const std::string plain = json::object([&](json::Fields& f) { f.str("account", account.name); });
  const std::string browser = json::object(
      [&](json::Fields& f) { f.str("account", account.name).str("method", "browser"); });
  button("sign_in", "Sign in", "login", plain, "mdi:login");
  button("sign_in_browser", "Sign in (browser)", "login", browser, "mdi:web");
  button("sign_out", "Sign out", "logout", plain, "mdi:logout");
  for (const auto& r : account.resources) {
    const std::string topic = account_topic + "/graph/" + r.name;
    const bool presence = ends_with(route_of(r.path), "/presence");
    const std::string state = r.ha_state ? *r.ha_state
                              : presence ? std::string("{{ value_json.availability }}")
                                         : std::string(kCountOrOk);
    out.push_back({"graph_" + r.name, "sensor", [=](json::Writer& w) {
                     json::Fields(w)
                         .str("name", resource_display_name(r.name, r.path))
                         .str("state_topic", topic)
                         .str("value_template", state)
                         .str("json_attributes_topic", topic)
                         .str("json_attributes_template", attributes_template())
                         .str("icon", presence ? "mdi:account-clock" : "mdi:microsoft");
                     // Unavailable rather than stale data after a sign-out.
                     w.Key("availability");
                     w.StartArray();
                     availability_entry(w, base + "/bridge/state", "online");
                     availability_entry(w, account_topic + "/auth/state", "signed_in");
                     w.EndArray();
                     json::Fields(w).str("availability_mode", "all");
                   }});
  }
  return out;
}

bool names_topic(const rapidjson::Value& object, const std::string& topic) {
  if (!object.IsObject()) return false;
  for (const char* key : {"availability_topic", "avty_t"}) {
    if (json::get_string(object, key) == topic) return true;
  }
  for (const char* key : {"availability", "avty"}) {
    const auto it = object.FindMember(key);
    if (it == object.MemberEnd() || !it->value.IsArray()) continue;
    for (const auto& entry : it->value.GetArray()) {
      if (!entry.IsObject()) continue;
      if (json::get_string(entry, "topic") == topic || json::get_string(entry, "t") == topic) {
        return true;
      }
    }
  }
  return false;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto slash = s.find('/', start);
    parts.push_back(s.substr(start, slash - start));
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

}  // namespace

std::string resource_display_name(const std::string& name, const std::string& path) {
  const std::string label = route_label(path);
  std::string words = words_of(name);
  if (label.empty()) {
    if (!words.empty())
      words[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(words[0])));
    return words;
  }
  // A name that only repeats the route ("presence", "me", "events") adds nothing.
  const std::string route = lower(route_of(path));
  const std::string last = route.substr(route.rfind('/') + 1);
  const std::string key = lower(words);
  if (key == lower(label) || key == last || key == "me") return label;
  return label + " " + words;
}

std::string discovery_node_id(const std::string& base_topic, const std::string& account) {
  std::string id = base_topic + "_" + account;
  std::replace(id.begin(), id.end(), '/', '_');
  return id;
}

bool is_own_discovery_config(const std::string& payload, const std::string& base_topic) {
  const auto doc = json::parse_object(payload);
  if (!doc) return false;
  const std::string topic = base_topic + "/bridge/state";
  if (names_topic(*doc, topic)) return true;
  for (const char* key : {"components", "cmps"}) {
    const auto it = doc->FindMember(key);
    if (it == doc->MemberEnd() || !it->value.IsObject()) continue;
    for (const auto& c : it->value.GetObject()) {
      if (names_topic(c.value, topic)) return true;
    }
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> discovery_messages(
    const Config& config, const RetainedConfigs& previous) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!config.homeassistant_enabled) return out;
  const std::string& base = config.mqtt.base_topic;
  auto previous_of = [&](const std::string& topic) -> const std::string* {
    const auto it = previous.find(topic);
    return it == previous.end() ? nullptr : &it->second;
  };

  const std::string bridge = discovery_node_id(base, "bridge");
  const std::vector<Component> bridge_components = {
      {"connectivity", "binary_sensor", [&](json::Writer& w) {
         json::Fields(w)
             .str("name", "Connection")
             .str("device_class", "connectivity")
             .str("entity_category", "diagnostic")
             .str("state_topic", base + "/bridge/state")
             .str("value_template", "{{ value_json.state }}")
             .str("payload_on", "online")
             .str("payload_off", "offline");
       }}};
  const std::string bridge_topic = device_topic(config, bridge);
  out.emplace_back(bridge_topic, device_config(
                                     base, bridge,
                                     [&](json::Writer& w) {
                                       json::Fields(w).strings("identifiers", {bridge});
                                       json::Fields(w)
                                           .str("name", "graph2mqtt bridge")
                                           .str("manufacturer", "graph2mqtt")
                                           .str("model", "graph2mqtt bridge")
                                           .str("sw_version", kVersion);
                                     },
                                     bridge_components, previous_of(bridge_topic)));

  for (const auto& account : config.accounts) {
    const std::string node = discovery_node_id(base, account.name);
    const std::string topic = device_topic(config, node);
    out.emplace_back(topic, device_config(
                                base, node,
                                [&](json::Writer& w) {
                                  json::Fields(w).strings("identifiers", {node});
                                  json::Fields(w)
                                      .str("name", "graph2mqtt " + account.name)
                                      .str("manufacturer", "graph2mqtt")
                                      .str("model", "Microsoft 365 sign-in")
                                      .str("sw_version", kVersion)
                                      .str("via_device", bridge);
                                },
                                account_components(config, account), previous_of(topic)));
  }
  return out;
}

DiscoveryPlan plan_discovery(const Config& config, const RetainedConfigs& retained) {
  DiscoveryPlan plan;
  const std::string& base = config.mqtt.base_topic;
  const bool enabled = config.homeassistant_enabled;
  // What the configuration has: its device configs, and the per-entity topics an earlier version
  // published for the same entities (`P/<component>/B_A/<key>/config`).
  std::set<std::string> devices, entities;
  if (enabled) {
    devices.insert(device_topic(config, discovery_node_id(base, "bridge")));
    for (const auto& a : config.accounts) {
      const std::string node = discovery_node_id(base, a.name);
      devices.insert(device_topic(config, node));
      for (const auto& c : account_components(config, a)) {
        entities.insert(config.homeassistant_prefix + "/" + c.platform + "/" + node + "/" + c.key +
                        "/config");
      }
    }
  }
  RetainedConfigs previous;
  const std::string prefix = config.homeassistant_prefix + "/";
  for (const auto& [topic, payload] : retained) {
    if (payload.empty() || topic.compare(0, prefix.size(), prefix) != 0) continue;
    const auto parts = split(topic.substr(prefix.size()));
    if (parts.size() < 3 || parts.size() > 4 || parts.back() != "config") continue;
    if (!is_own_discovery_config(payload, base)) continue;
    if (devices.count(topic) != 0) {
      previous.emplace(topic, payload);
    } else if (entities.count(topic) != 0) {
      plan.migrate.push_back(topic);
    } else {
      plan.clear.push_back(topic);
    }
  }
  plan.publish = discovery_messages(config, previous);
  return plan;
}

}  // namespace g2m
