// The example broker ACL (config/mosquitto.acl) implements the threat model of SECURITY.md:
// displays only read codes and states, only trusted clients send commands, nobody anonymous.
#include <doctest/doctest.h>

#include "scenario.h"

using namespace g2m::test;

namespace {
ProbeOptions as(const Mosquitto& broker, const std::string& user, const std::string& password) {
  ProbeOptions o;
  o.url = broker.url();
  o.username = user;
  o.password = password;
  return o;
}
}  // namespace

TEST_CASE("acl: the shipped ACL keeps displays read-only and strangers out") {
  TempDir tmp("g2m-acl");
  const Pki pki = make_pki(tmp / "pki");
  MosquittoOptions options;
  options.users = {{"agent", "agent-pw"}, {"display", "display-pw"}, {"admin", "admin-pw"}};
  options.acl = read_file(std::string(G2M_SOURCE_DIR) + "/config/mosquitto.acl");
  REQUIRE_FALSE(options.acl.empty());
  // The test probes' own marker topics (sync, fetch_retained), for every user.
  options.acl += "\npattern readwrite g2m-test/#\n";
  Mosquitto broker(options);
  Simulator sim(pki, {"--interval", "1"});

  write_file(tmp / "agent.secret", "agent-pw\n");
  AgentConfig config = agent_config(broker, sim, pki, kitchen_account());
  config.mqtt_extra = "username: agent\npassword_file: " + (tmp / "agent.secret").string() + "\n";
  Agent agent(config);

  MqttProbe display(as(broker, "display", "display-pw"));
  MqttProbe admin(as(broker, "admin", "admin-pw"));
  display.wait_for_json("graph2mqtt/bridge/state",
                        [](const rapidjson::Value& v) { return json_str(v, "state") == "online"; });
  display.wait_for_json("graph2mqtt/kitchen/auth/state", [](const rapidjson::Value& v) {
    return json_str(v, "state") == "signed_out";
  });

  SUBCASE("a display cannot start a sign-in") {
    Outgoing login;
    login.topic = "graph2mqtt/bridge/request/login";
    login.payload = R"({"account":"kitchen"})";
    const auto refused = display.try_publish(login);
    REQUIRE(refused.has_value());
    CHECK(refused->find("Not authorized") != std::string::npos);
    admin.sync();  // the broker has handled everything sent before
    CHECK(sim.counters().devicecode == 0);
  }

  SUBCASE("an admin starts a sign-in; the display sees the code but no events or replies") {
    const auto since = display.mark();
    auto reply = admin.request("login", R"({"account":"kitchen"})");
    CHECK(json_str(reply, "status") == "ok");
    display.wait_for_json(
        "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        since);
    admin.wait_for("graph2mqtt/kitchen/events");
    display.sync();
    CHECK(display.messages("graph2mqtt/kitchen/events").empty());
    CHECK(display.messages("graph2mqtt/bridge/response/#").empty());
  }

  SUBCASE("an unauthenticated client is refused") {
    ProbeOptions anonymous;
    anonymous.url = broker.url();
    const auto refused = try_connect(anonymous);
    REQUIRE(refused.has_value());
    CHECK(refused->find("Not authorized") != std::string::npos);
  }
}
