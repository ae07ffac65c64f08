// A whole test world in one object: a test CA, a private Mosquitto, the simulated identity
// platform over HTTPS, a display probe subscribed to everything, and the agent configured for
// them. Tests then speak only MQTT to the agent, as displays and Home Assistant do.
#pragma once

#include <string>
#include <vector>

#include "harness.h"

namespace g2m::test {

inline constexpr const char* kClientId = "00000000-0000-0000-0000-000000000001";

// One account `kitchen` with the profile and presence resources.
inline std::string kitchen_account(const std::string& extra = "") {
  return std::string("kitchen:\n") + "  client_id: " + kClientId + "\n" +
         "  scopes: [User.Read, Presence.Read]\n" + "  graph_allow: [/me]\n" + "  resources:\n" +
         "    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n" +
         "    presence: { path: /me/presence, every: 30s }\n" + extra;
}

struct ScenarioOptions {
  std::string accounts = kitchen_account();
  std::vector<std::string> simulator_args = {"--interval", "1"};
  MosquittoOptions broker{};
  std::string base_topic = "graph2mqtt";
  std::string mqtt_extra{};
  std::string identity_extra{};
  std::string extra{};  // more top-level config sections, e.g. "homeassistant:\n  enabled: true\n"
  bool start_agent = true;
};

struct Scenario {
  explicit Scenario(ScenarioOptions options = {})
      : tmp("g2m-scenario"),
        pki(make_pki(tmp / "pki")),
        broker(options.broker),
        simulator(pki, options.simulator_args),
        display(broker, options.base_topic),
        config(agent_config(broker, simulator, pki, options.accounts, options.base_topic)),
        base(options.base_topic) {
    config.mqtt_extra = options.mqtt_extra;
    config.identity_extra = options.identity_extra;
    config.extra = options.extra;
    agent = std::make_unique<Agent>(config);
    if (options.start_agent) wait_online();
  }

  // Waits for the agent's retained bridge/state online (after a start or restart).
  Message wait_online(std::size_t since = 0) {
    // A generous deadline: under valgrind (the memcheck test) the agent starts slowly.
    return display.wait_for_json(
        base + "/bridge/state",
        [](const rapidjson::Value& v) { return json_str(v, "state") == "online"; }, 60s, since);
  }

  std::string topic(const std::string& account, const std::string& leaf) const {
    return base + "/" + account + "/" + leaf;
  }

  // The next auth/state of `account` in state `state` (after `since`).
  Message wait_state(const std::string& account, const std::string& state, std::size_t since = 0,
                     std::chrono::milliseconds timeout = 15s) {
    return display.wait_for_json(
        topic(account, "auth/state"),
        [&](const rapidjson::Value& v) { return json_str(v, "state") == state; }, timeout, since);
  }

  // The next event `event` of `account` (after `since`).
  Message wait_event(const std::string& account, const std::string& event, std::size_t since = 0,
                     std::chrono::milliseconds timeout = 15s) {
    return display.wait_for_json(
        topic(account, "events"),
        [&](const rapidjson::Value& v) { return json_str(v, "event") == event; }, timeout, since);
  }

  // Asks for a sign-in and returns the user code the display was shown.
  std::string login(const std::string& account = "kitchen") {
    const auto since = display.mark();
    auto reply = display.request("login", R"({"account":")" + account + R"("})");
    REQUIRE(json_str(reply, "status") == "ok");
    auto code = display.wait_for_json(
        topic(account, "auth/code"), [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        since);
    return json_str(code.json(), "user_code");
  }

  // A full sign-in: login, approve on the simulator, wait for signed_in.
  void sign_in(const std::string& account = "kitchen") {
    const auto since = display.mark();
    simulator.approve(login(account));
    wait_state(account, "signed_in", since);
  }

  TempDir tmp;
  Pki pki;
  Mosquitto broker;
  Simulator simulator;
  MqttProbe display;
  AgentConfig config;
  std::string base;
  std::unique_ptr<Agent> agent;
};

}  // namespace g2m::test
