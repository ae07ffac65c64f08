// The request vocabulary's newer rules end to end (CONTRACT §2): a response topic under the Home
// Assistant discovery prefix is refused whether discovery is on or off, the transaction comes
// back exactly as it was written, and `graph` refuses hostile encodings of its path before
// anything reaches Graph.
#include <doctest/doctest.h>

#include "scenario_broker.h"
#include "scenario_commands.h"

using namespace g2m::test;

namespace {

// Requests Graph received for paths other than the resources' (/me and /me/presence).
long other_graph_requests(Simulator& simulator) {
  const auto json = parse_json(simulator.counters().json);
  if (!json.HasMember("requests") || !json["requests"].HasMember("graph_paths")) return 0;
  long n = 0;
  for (const auto& p : json["requests"]["graph_paths"].GetObject()) {
    const std::string path = p.name.GetString();
    if (path != "/v1.0/me" && path != "/v1.0/me/presence" && p.value.IsInt64()) {
      n += static_cast<long>(p.value.GetInt64());
    }
  }
  return n;
}

// Sends `login` with `topic` as its MQTT 5 response topic and checks that it was refused: an
// error reply on the fixed topic naming the response topic, nothing on `topic`, no sign-in.
void check_refused(Scenario& s, const std::string& topic, const std::string& tx) {
  CAPTURE(topic);
  auto& d = s.display;
  const auto since = d.mark();
  d.publish(Outgoing{.topic = request_topic(s, "login"),
                     .payload = R"({"account":"kitchen","transaction":)" + tx + "}",
                     .response_topic = topic,
                     .correlation_data = "c-" + tx});
  auto r = wait_reply(s, "login", tx, since).json();
  CHECK(is_error_reply(r));
  CHECK(lower(json_str(r, "error")).find("response topic") != std::string::npos);
  d.sync();
  for (const auto& m : d.messages("#")) {
    // The agent's own discovery config may be (re)published there; a reply carries the
    // request's correlation data.
    if (m.index >= since && m.topic == topic &&
        (m.correlation_data == "c-" + tx || m.payload.find("\"status\"") != std::string::npos)) {
      CHECK_MESSAGE(false, "a reply went to the refused topic: " << m.describe());
    }
  }
}

}  // namespace

TEST_CASE("mqtt5: a response topic under the discovery prefix is refused while discovery is off") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  const auto retained_before = retained_snapshot(s);
  check_refused(s, "homeassistant/device/graph2mqtt_kitchen/config", "\"ha-1\"");
  check_refused(s, "homeassistant/sensor/x/config", "\"ha-2\"");
  check_refused(s, "homeassistant/status", "\"ha-3\"");
  // A topic that only starts with the same letters is not under the prefix.
  auto& d = s.display;
  const auto m = d.request_v5("status", R"({"account":"kitchen","transaction":"ha-4"})",
                              "homeassistantx/replies", "ok-4");
  CHECK(json_str(m.json(), "status") == "ok");
  CHECK(s.simulator.counters().devicecode == 0);
  CHECK(retained_snapshot(s) == retained_before);
}

TEST_CASE("mqtt5: with discovery on, a response topic under its own prefix is refused") {
  ScenarioOptions options;
  options.extra = "homeassistant:\n  enabled: true\n  prefix: ha-test\n";
  Scenario s(options);
  s.wait_state("kitchen", "signed_out");
  check_refused(s, "ha-test/device/graph2mqtt_kitchen/config", "7");
  check_refused(s, "ha-test/status", "8");
  CHECK(s.simulator.counters().devicecode == 0);
}

TEST_CASE("commands: the transaction comes back exactly as it was written") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  for (const std::string tx : {"1.50", "1e2", "-0", R"("caf\u00e9")", R"("a\/b")"}) {
    CAPTURE(tx);
    const auto reply =
        raw_request(s, "status", R"({"account":"kitchen", "transaction" : )" + tx + " }");
    const std::string expected = R"(,"transaction":)" + tx + "}";
    CHECK_MESSAGE(reply.payload.size() >= expected.size(), reply.payload);
    CHECK(reply.payload.compare(reply.payload.size() - expected.size(), expected.size(),
                                expected) == 0);
  }
}

TEST_CASE("commands: graph refuses hostile encodings of its path before anything reaches Graph") {
  Scenario s;
  s.sign_in();
  s.display.wait_for_json(
      "graph2mqtt/kitchen/graph/presence", [](const rapidjson::Value& v) { return v.IsObject(); },
      10s);
  const long before = other_graph_requests(s.simulator);
  int i = 0;
  for (const std::string path :
       {"/me/%5Cusers", "/me/%u002e%u002e/users", "/me/%c0%ae%c0%ae/users",
        "/me/\xEF\xBC\x8E\xEF\xBC\x8E/users", "/me/..;/users", "/me%00/presence",
        "/me/presence%0d%0aX-Evil:%201", "/me%2fpresence", "/me/%2"}) {
    CAPTURE(path);
    const std::string tx = "\"p-" + std::to_string(i++) + "\"";
    const auto since = s.display.mark();
    s.display.publish(request_topic(s, "graph"), R"({"account":"kitchen","transaction":)" + tx +
                                                     R"(,"path":")" + path + "\"}");
    const auto r = wait_reply(s, "graph", tx, since).json();
    CHECK(is_error_reply(r));
    CHECK(json_str(r, "error").find("`path`") != std::string::npos);
    CHECK_FALSE(r.HasMember("retry_in"));  // refused for good, not rate limited
  }
  CHECK(other_graph_requests(s.simulator) == before);
  // An ordinary path still goes through.
  const auto ok = s.display.request("graph", R"({"account":"kitchen","path":"/me"})");
  CHECK(json_str(ok, "status") == "ok");
}
