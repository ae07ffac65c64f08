// Helpers for the broker-loss, broker-security and Graph tests: simulator counters by Graph path,
// device-code states, log searches, retained snapshots, and BrokerWorld, a test world whose
// broker may demand passwords, apply an ACL, or listen with TLS or WebSockets, and whose agent is
// started only when the test says so (possibly while the broker is down).
#pragma once

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario.h"

namespace g2m::test {

// requests.graph_paths[path] of the simulator (0 when the path was never requested).
inline long graph_path_count(Simulator& simulator, const std::string& path) {
  const auto json = parse_json(simulator.counters().json);
  if (!json.HasMember("requests") || !json["requests"].HasMember("graph_paths")) return 0;
  const auto& paths = json["requests"]["graph_paths"];
  const auto it = paths.FindMember(path.c_str());
  return it == paths.MemberEnd() || !it->value.IsInt64() ? 0
                                                         : static_cast<long>(it->value.GetInt64());
}

// The simulator's state of a device code: pending, approved, declined, redeemed, expired ("" if
// unknown).
inline std::string code_state(Simulator& simulator, const std::string& user_code) {
  const HttpReply reply = simulator.get("/_sim/codes");
  if (reply.status != 200) return "";
  const auto json = parse_json(reply.body);
  for (const auto& code : json["codes"].GetArray()) {
    if (json_str(code, "user_code") == user_code) return json_str(code, "state");
  }
  return "";
}

inline std::size_t count_of(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// The lines of `text` that contain `needle`, joined (for failure messages and log assertions).
inline std::string lines_with(std::string_view text, std::string_view needle) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(start, end - start);
    if (line.find(needle) != std::string_view::npos) out.append(line).append("\n");
    start = end + 1;
  }
  return out;
}

// What a new subscriber to `filter` gets now, as topic -> payload.
inline std::map<std::string, std::string> retained_map(const MqttProbe& probe,
                                                       const std::string& filter) {
  std::map<std::string, std::string> out;
  for (const auto& m : probe.fetch_retained(filter)) out[m.topic] = m.payload;
  return out;
}

inline std::string describe(const std::map<std::string, std::string>& retained) {
  std::string out;
  for (const auto& [topic, payload] : retained) out += "  " + topic + " = " + payload + "\n";
  return out.empty() ? "  (nothing retained)\n" : out;
}

// One account `kitchen` with resources given as YAML lines under `resources:` (indented by 4).
inline std::string kitchen_with(const std::string& resources, const std::string& extra = "") {
  return std::string("kitchen:\n") + "  client_id: " + kClientId + "\n" +
         "  scopes: [User.Read, Presence.Read, Calendars.Read]\n" + "  graph_allow: [/me]\n" +
         "  resources:\n" + resources + extra;
}

// A secured (or deliberately unreachable) broker, the simulator, two observers and an agent that
// starts when the test asks: `display` may only read graph2mqtt/# (and use the harness' own
// g2m-test/# markers); `admin` may also send commands.
struct BrokerWorldOptions {
  bool secured = true;  // users agent/display/admin with passwords, the ACL below
  bool tls = false;
  bool require_client_cert = false;
  bool websockets = false;
  std::vector<std::string> simulator_args = {"--interval", "1"};
};

inline constexpr const char* kAgentPassword = "agent-S3cret-pw-4f2a";
inline constexpr const char* kDisplayPassword = "display-pw";
inline constexpr const char* kAdminPassword = "admin-pw";

inline std::string broker_acl() {
  return "user agent\n"
         "topic readwrite graph2mqtt/#\n"
         "\n"
         "user admin\n"
         "topic readwrite graph2mqtt/#\n"
         "topic readwrite g2m-test/#\n"
         "\n"
         "user display\n"
         "topic read graph2mqtt/#\n"
         "topic readwrite g2m-test/#\n";
}

struct BrokerWorld {
  explicit BrokerWorld(BrokerWorldOptions options = {})
      : options_(options),
        tmp("g2m-broker-world"),
        pki(make_pki(tmp / "pki")),
        broker(broker_options(options, pki)),
        simulator(pki, options.simulator_args),
        display(probe_options("display", kDisplayPassword)),
        admin(probe_options("admin", kAdminPassword)) {}

  static MosquittoOptions broker_options(const BrokerWorldOptions& o, const Pki& p) {
    MosquittoOptions m;
    if (o.secured) {
      m.users = {
          {"agent", kAgentPassword}, {"display", kDisplayPassword}, {"admin", kAdminPassword}};
      m.acl = broker_acl();
    }
    if (o.tls) m.tls = p;
    m.require_client_cert = o.require_client_cert;
    m.websockets = o.websockets;
    return m;
  }

  ProbeOptions probe_options(const std::string& user, const std::string& password) const {
    ProbeOptions p{.url = broker.url()};
    if (options_.secured) {
      p.username = user;
      p.password = password;
    }
    return p;
  }

  // A password file for the agent (with the trailing newline editors add).
  std::filesystem::path password_file(const std::string& password, const std::string& name) {
    const auto file = tmp / name;
    write_file(file, password + "\n");
    return file;
  }

  // The agent's config for `server` with these mqtt lines (YAML at column 0).
  AgentConfig agent_config_for(const std::string& server, const std::string& mqtt_extra,
                               const std::string& accounts = kitchen_account()) const {
    AgentConfig c = agent_config(broker, simulator, pki, accounts);
    c.mqtt_server = server;
    c.mqtt_extra = mqtt_extra;
    return c;
  }

  Agent& start_agent(const AgentConfig& c) {
    agents.push_back(std::make_unique<Agent>(c));
    return *agents.back();
  }

  // Waits for the agent's bridge/state online as the display sees it.
  Message wait_online(std::size_t since = 0, std::chrono::milliseconds timeout = 10s) {
    return display.wait_for_json(
        "graph2mqtt/bridge/state",
        [](const rapidjson::Value& v) { return json_str(v, "state") == "online"; }, timeout, since);
  }

  // `graph2mqtt --check-config` on this config text (never started as an agent).
  struct CheckResult {
    std::optional<int> status;
    std::string output;
    std::filesystem::path config;
  };
  CheckResult check_config(const AgentConfig& c, const std::string& name) {
    const auto dir = tmp / name;
    std::filesystem::create_directories(dir);
    const auto config = dir / "config.yaml";
    write_file(config, to_yaml(c, dir / "tokens"));
    Process tool({G2M_AGENT_BIN, "--check-config", "--config", config.string()}, dir / "check.log",
                 c.env);
    CheckResult result;
    result.status = tool.wait_exit(10s);
    result.output = tool.log_text();
    result.config = config;
    return result;
  }

  BrokerWorldOptions options_;
  TempDir tmp;
  Pki pki;
  Mosquitto broker;
  Simulator simulator;
  MqttProbe display;
  MqttProbe admin;
  std::vector<std::unique_ptr<Agent>> agents;
};

}  // namespace g2m::test
