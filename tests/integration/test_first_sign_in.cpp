// The first complete path (issue 2): a display asks for a sign-in over MQTT, shows the code,
// the user approves it, and the display sees the user's name and the Graph results.
#include <doctest/doctest.h>

#include "scenario.h"

using namespace g2m::test;

namespace {
bool is_utc_timestamp(const std::string& s) {
  return s.size() == 20 && s[4] == '-' && s[10] == 'T' && s[19] == 'Z';
}
}  // namespace

TEST_CASE("sign-in: a display signs an account in over MQTT and sees the Graph results") {
  Scenario s;
  auto& d = s.display;

  // bridge/state online (retained) and bridge/info with the version and the accounts.
  auto online = d.wait_for("graph2mqtt/bridge/state");
  CHECK(online.payload == R"({"state":"online"})");
  CHECK(online.qos == 1);
  auto info = d.wait_for("graph2mqtt/bridge/info").json();
  CHECK(json_str(info, "version") == "0.1.0");
  CHECK(json_str(info, "base_topic") == "graph2mqtt");
  REQUIRE(info["accounts"].IsArray());
  CHECK(info["accounts"].Size() == 1);
  CHECK(std::string(info["accounts"][0].GetString()) == "kitchen");
  CHECK(is_utc_timestamp(json_str(info, "started_at")));

  // At start, with no tokens: signed_out, reason null, and empty retained auth/code and graph/R.
  auto first = s.wait_state("kitchen", "signed_out").json();
  CHECK(first["reason"].IsNull());
  CHECK(first["user"].IsNull());
  CHECK(first["code"].IsNull());
  CHECK(first["expires_at"].IsNull());
  CHECK(first["scopes"].IsArray());
  CHECK(first["scopes"].Empty());
  CHECK(d.wait_for("graph2mqtt/kitchen/auth/code").payload.empty());
  CHECK(d.wait_for("graph2mqtt/kitchen/graph/me").payload.empty());
  CHECK(d.wait_for("graph2mqtt/kitchen/graph/presence").payload.empty());

  // login: the reply comes after the device-code answer and carries the pending state + code.
  const auto before_login = d.mark();
  auto reply = d.request("login", R"({"account":"kitchen","transaction":"t-1"})");
  CHECK_MESSAGE(json_str(reply, "status") == "ok", json_str(reply, "error"));
  CHECK(json_str(reply, "transaction") == "t-1");
  CHECK(json_str(reply["data"], "state") == "pending");
  REQUIRE(reply["data"]["code"].IsObject());
  const std::string user_code = json_str(reply["data"]["code"], "user_code");
  CHECK(user_code.size() == 9);

  auto code_msg = d.wait_for_json(
      "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      before_login);
  CHECK(code_msg.qos == 1);
  REQUIRE(code_msg.message_expiry.has_value());
  CHECK(*code_msg.message_expiry > 880);
  CHECK(*code_msg.message_expiry <= 900);
  auto code = code_msg.json();
  CHECK(json_str(code, "user_code") == user_code);
  CHECK(json_str(code, "verification_uri") == "https://microsoft.com/devicelogin");
  CHECK(code["verification_uri_complete"].IsNull());
  CHECK(json_str(code, "message").find(user_code) != std::string::npos);
  CHECK(is_utc_timestamp(json_str(code, "expires_at")));
  CHECK(code["interval"].GetInt() == 1);
  CHECK_FALSE(code.HasMember("device_code"));
  CHECK(json_str(code, "method") == "device_code");
  CHECK(code["sign_in_url"].IsNull());

  auto pending = s.wait_state("kitchen", "pending", before_login).json();
  CHECK(json_str(pending["code"], "user_code") == user_code);
  CHECK(json_str(pending, "expires_at") == json_str(code, "expires_at"));
  CHECK(pending["reason"].IsNull());
  CHECK(pending["error"].IsNull());

  auto issued = s.wait_event("kitchen", "code_issued", before_login).json();
  CHECK(json_str(issued, "user_code") == user_code);
  CHECK(json_str(issued, "method") == "device_code");
  CHECK(issued["sign_in_url"].IsNull());
  CHECK(json_str(issued, "verification_uri") == "https://microsoft.com/devicelogin");
  CHECK(json_str(issued, "expires_at") == json_str(code, "expires_at"));
  CHECK(is_utc_timestamp(json_str(issued, "at")));

  // The user approves on the phone: signed_in with the name from the id_token.
  const auto before_approve = d.mark();
  s.simulator.approve(user_code, "Adele Vance", "adele@contoso.com");
  auto signed_in = s.wait_event("kitchen", "signed_in", before_approve).json();
  CHECK(json_str(signed_in["user"], "name") == "Adele Vance");
  CHECK(json_str(signed_in["user"], "username") == "adele@contoso.com");
  REQUIRE(signed_in["scopes"].IsArray());

  auto state = s.wait_state("kitchen", "signed_in", before_approve).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  CHECK(json_str(state["user"], "username") == "adele@contoso.com");
  CHECK(is_utc_timestamp(json_str(state, "expires_at")));
  CHECK(state["code"].IsNull());
  CHECK(state["reason"].IsNull());
  std::vector<std::string> scopes;
  for (auto& v : state["scopes"].GetArray()) scopes.emplace_back(v.GetString());
  CHECK(std::find(scopes.begin(), scopes.end(), "Presence.Read") != scopes.end());

  // auth/code cleared with an empty retained payload.
  auto cleared = d.wait_for(
      "graph2mqtt/kitchen/auth/code", [](const Message& m) { return m.payload.empty(); }, 10s,
      before_approve);
  CHECK(cleared.payload.empty());

  // Each configured resource is fetched and published (retained).
  auto me = d.wait_for_json(
      "graph2mqtt/kitchen/graph/me", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      before_approve);
  CHECK(json_str(me.json(), "displayName") == "Adele Vance");
  auto presence = d.wait_for_json(
      "graph2mqtt/kitchen/graph/presence", [](const rapidjson::Value& v) { return v.IsObject(); },
      10s, before_approve);
  CHECK(json_str(presence.json(), "availability") == "Available");

  // What a display that connects now gets: the retained values.
  CHECK(d.retained_value("graph2mqtt/kitchen/auth/code") == std::nullopt);
  auto retained_state = d.retained_value("graph2mqtt/kitchen/auth/state");
  REQUIRE(retained_state.has_value());
  CHECK(json_str(parse_json(*retained_state), "state") == "signed_in");
  CHECK(d.retained_value("graph2mqtt/kitchen/graph/presence").has_value());

  // The protocol was followed: no poll came early, the first one included.
  auto counters = s.simulator.counters();
  CHECK(counters.interval_violations == 0);
  CHECK(counters.slow_down_sent == 0);
  CHECK(counters.devicecode == 1);

  // No secret on any topic.
  for (const auto& m : d.messages()) {
    CHECK(m.payload.find("access_token") == std::string::npos);
    CHECK(m.payload.find("refresh_token") == std::string::npos);
    CHECK(m.payload.find("\"device_code\":") == std::string::npos);  // the key, not the method
  }

  // SIGTERM: offline published, clean exit 0.
  const auto before_stop = d.mark();
  CHECK(s.agent->stop() == 0);
  auto offline = d.wait_for("graph2mqtt/bridge/state", {}, 5s, before_stop);
  CHECK(offline.payload == R"({"state":"offline"})");
}

TEST_CASE("sign-in: a shutdown during a pending sign-in clears the code and says why") {
  Scenario s;
  s.login();
  const auto since = s.display.mark();
  CHECK(s.agent->stop() == 0);
  auto state = s.wait_state("kitchen", "signed_out", since).json();
  CHECK(json_str(state, "reason") == "shutdown");
  CHECK(state["code"].IsNull());
  s.display.wait_for(
      "graph2mqtt/kitchen/auth/code", [](const Message& m) { return m.payload.empty(); }, 5s,
      since);
  auto ev = s.wait_event("kitchen", "signed_out", since).json();
  CHECK(json_str(ev, "reason") == "shutdown");
  s.display.wait_for(
      "graph2mqtt/bridge/state",
      [](const Message& m) { return m.payload == R"({"state":"offline"})"; }, 5s, since);
}

TEST_CASE(
    "sign-in: a restart with stored tokens is signed in at once, with no device-code request") {
  Scenario s;
  s.sign_in();
  CHECK(s.agent->stop() == 0);
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  s.display.wait_for_json(
      "graph2mqtt/kitchen/graph/presence", [](const rapidjson::Value& v) { return v.IsObject(); },
      10s, since);
  CHECK(s.simulator.counters().devicecode == 1);
  // Tokens restored from disk emit no signed_in event.
  s.display.sync();
  for (const auto& m : s.display.messages("graph2mqtt/kitchen/events")) {
    if (m.index >= since) CHECK(json_str(m.json(), "event") != "signed_in");
  }
}

TEST_CASE("sign-in: without an id_token the user's name comes from Graph's /me") {
  Scenario s;
  s.simulator.config(R"({"omit_id_token":true})");
  const auto since = s.display.mark();
  s.simulator.approve(s.login(), "Megan Bowen", "megan@contoso.com");
  const auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Megan Bowen");
  CHECK(json_str(state["user"], "username") == "megan@contoso.com");
  const auto event = s.wait_event("kitchen", "signed_in", since).json();
  CHECK(json_str(event["user"], "name") == "Megan Bowen");
  // The name came from Graph (no id_token was issued), asked for with the new access token.
  const auto issued = parse_json(s.simulator.get("/_sim/issued").body);
  REQUIRE(issued["id_tokens"].IsArray());
  CHECK(issued["id_tokens"].Size() == 0);
  const auto counters = parse_json(s.simulator.counters().json);
  const auto& paths = counters["requests"]["graph_paths"];
  REQUIRE(paths.HasMember("/v1.0/me"));
  CHECK(paths["/v1.0/me"].GetInt64() >= 1);
  CHECK(s.simulator.counters().interval_violations == 0);
}
