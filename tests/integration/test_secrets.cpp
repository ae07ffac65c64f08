// The secrets audit (issue 5): a whole scenario at debug log level — sign-in, Graph, refresh,
// errors, logout — watched on `#` and in the agent's log; no token, device code or MQTT password
// may appear in either.
#include <doctest/doctest.h>

#include "scenario.h"

using namespace g2m::test;

TEST_CASE("secrets: no token, device code or MQTT password in any MQTT payload or log line") {
  TempDir tmp("g2m-secrets");
  const Pki pki = make_pki(tmp / "pki");
  const std::string mqtt_password = "pw-" + unique_id("mqtt-secret");
  MosquittoOptions broker_options;
  broker_options.users = {{"agent", mqtt_password}, {"display", "display-pw"}};
  Mosquitto broker(broker_options);
  Simulator sim(pki, {"--interval", "1", "--log"});
  ProbeOptions probe_options;
  probe_options.url = broker.url();
  probe_options.username = "display";
  probe_options.password = "display-pw";
  MqttProbe d(probe_options);

  write_file(tmp / "mqtt.secret", mqtt_password + "\n");
  AgentConfig config = agent_config(broker, sim, pki, kitchen_account());
  config.mqtt_extra = "username: agent\npassword_file: " + (tmp / "mqtt.secret").string() + "\n";
  config.log_level = "debug";
  Agent agent(config);
  d.wait_for_json("graph2mqtt/bridge/state",
                  [](const rapidjson::Value& v) { return json_str(v, "state") == "online"; });

  // Sign in.
  auto since = d.mark();
  auto reply = d.request("login", R"({"account":"kitchen"})");
  const std::string user_code = json_str(reply["data"]["code"], "user_code");
  sim.approve(user_code);
  d.wait_for_json(
      "graph2mqtt/kitchen/graph/presence", [](const rapidjson::Value& v) { return v.IsObject(); },
      15s, since);
  // A refresh, a Graph command, a refresh after a 401, and errors on the way.
  CHECK(json_str(d.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  CHECK(json_str(d.request("graph", R"({"account":"kitchen","path":"/me"})"), "status") == "ok");
  sim.expire_tokens();
  since = d.mark();
  d.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  sim.fail(R"({"endpoint":"refresh","count":1,"status":503})");
  sim.expire_tokens();  // a Graph 401 refreshes (a second `refresh` command would be limited)
  // `refresh` of a resource is limited to one per second: asked again until it is allowed.
  REQUIRE(poll_until(
      [&] {
        auto r = d.request("refresh", R"({"account":"kitchen","resource":"me"})");
        return !(json_str(r, "status") == "error" && r.HasMember("retry_in"));
      },
      10s));
  d.wait_for_json(
      "graph2mqtt/kitchen/events",
      [](const rapidjson::Value& v) { return json_str(v, "event") == "auth_error"; }, 10s, since);
  // Logout.
  CHECK(json_str(d.request("logout", R"({"account":"kitchen"})"), "status") == "ok");
  d.sync();
  CHECK(agent.stop() == 0);

  auto issued = parse_json(sim.get("/_sim/issued").body);
  std::vector<std::string> secrets = {mqtt_password};
  for (const char* kind : {"device_codes", "access_tokens", "refresh_tokens", "id_tokens"}) {
    REQUIRE(issued[kind].IsArray());
    for (const auto& v : issued[kind].GetArray()) secrets.emplace_back(v.GetString());
  }
  CHECK(issued["device_codes"].Size() == 1);
  CHECK(issued["access_tokens"].Size() >= 3);
  CHECK(issued["refresh_tokens"].Size() >= 3);

  const std::string log = agent.log_text();
  CHECK(log.find("debug") != std::string::npos);  // the audit ran at debug level
  const auto messages = d.messages();
  CHECK(messages.size() > 20);
  for (const auto& secret : secrets) {
    REQUIRE(secret.size() >= 16);
    CAPTURE(secret.substr(0, 6));
    CHECK(log.find(secret) == std::string::npos);
    for (const auto& m : messages) {
      CHECK(m.payload.find(secret) == std::string::npos);
      CHECK(m.topic.find(secret) == std::string::npos);
    }
  }
}
