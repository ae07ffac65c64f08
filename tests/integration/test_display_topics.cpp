// What small displays read (docs/mqtt-api.md "Topics the agent publishes"): auth/qr, a PNG of the
// address to open, and with mqtt.plain_topics the plain-text sub-topics of auth/state, auth/code
// and graph/R.
#include <doctest/doctest.h>

#include <cstdio>
#include <ctime>

#include "scenario.h"

using namespace g2m::test;

namespace {

// zbarimg's (Debian zbar-tools) reading of a PNG: what a phone camera would open.
std::string zbar_read(const TempDir& tmp, const std::string& png) {
  const auto path = tmp / "qr.png";
  write_file(path, png);
  std::string out;
  if (FILE* p = popen(("zbarimg --quiet --raw " + path.string() + " 2>/dev/null").c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool cleared(const Message& m) {
  return m.payload.empty();
}
auto equals(const std::string& text) {
  return [text](const Message& m) { return m.payload == text; };
}

long long epoch_of(const std::string& iso) {
  std::tm tm{};
  REQUIRE(strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return static_cast<long long>(timegm(&tm));
}

ScenarioOptions plain_topics() {
  ScenarioOptions o;
  o.mqtt_extra = "plain_topics: true\n";
  o.accounts = std::string("kitchen:\n  client_id: ") + kClientId +
               "\n  scopes: [User.Read, Presence.Read]\n  resources:\n"
               "    me:\n      path: \"/me?$select=displayName,mail\"\n      every: 1h\n"
               "      fields: { name: /displayName, whole: \"\" }\n"
               "    presence:\n      path: /me/presence\n      fields: { availability: "
               "/availability }\n";
  return o;
}

}  // namespace

TEST_CASE("display topics: auth/qr holds the verification URI while a sign-in waits") {
  Scenario s;
  auto& d = s.display;
  // Nothing stale from an earlier run.
  d.wait_for("graph2mqtt/kitchen/auth/qr", cleared);
  const auto since = d.mark();
  const std::string user_code = s.login();
  const auto code = d.wait_for_json(
      "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
      since);
  const auto doc = code.json();
  const std::string expected = doc["verification_uri_complete"].IsString()
                                   ? json_str(doc, "verification_uri_complete")
                                   : json_str(doc, "verification_uri");
  REQUIRE_FALSE(expected.empty());
  const auto qr = d.wait_for(
      "graph2mqtt/kitchen/auth/qr", [](const Message& m) { return !m.payload.empty(); }, 10s,
      since);
  CHECK(qr.payload.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(zbar_read(s.tmp, qr.payload) == expected);
  // Retained, and over MQTT 5 it expires with the code.
  CHECK(d.retained_value("graph2mqtt/kitchen/auth/qr") == qr.payload);
  REQUIRE(qr.message_expiry);
  CHECK(*qr.message_expiry > 0);
  CHECK(*qr.message_expiry <= *code.message_expiry + 1);

  // Cleared together with auth/code when the sign-in ends.
  const auto before = d.mark();
  s.simulator.approve(user_code);
  s.wait_state("kitchen", "signed_in", before);
  d.wait_for("graph2mqtt/kitchen/auth/code", cleared, 10s, before);
  d.wait_for("graph2mqtt/kitchen/auth/qr", cleared, 10s, before);
  CHECK_FALSE(d.retained_value("graph2mqtt/kitchen/auth/qr"));
}

TEST_CASE("display topics: auth/qr is cleared when a sign-in is cancelled") {
  Scenario s;
  auto& d = s.display;
  const auto since = d.mark();
  s.login();
  d.wait_for(
      "graph2mqtt/kitchen/auth/qr", [](const Message& m) { return !m.payload.empty(); }, 10s,
      since);
  const auto before = d.mark();
  CHECK(json_str(d.request("cancel", R"({"account":"kitchen"})"), "status") == "ok");
  d.wait_for("graph2mqtt/kitchen/auth/qr", cleared, 10s, before);
}

TEST_CASE("display topics: plain sub-topics at code issue, sign-in and logout") {
  Scenario s(plain_topics());
  auto& d = s.display;
  const std::string b = "graph2mqtt/kitchen/";
  d.wait_for(b + "auth/state/state", equals("signed_out"));
  for (const char* leaf :
       {"auth/code/user_code", "auth/code/expires_at", "auth/code/expires_at_epoch",
        "graph/me/name", "graph/me/whole", "graph/presence/availability"}) {
    INFO(leaf);
    d.wait_for(b + leaf, cleared);  // nothing stale from an earlier run
  }

  // A code is out: its plain parts match auth/code.
  auto since = d.mark();
  const std::string user_code = s.login();
  const auto code =
      d.wait_for_json(
           b + "auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s, since)
          .json();
  const std::string expires_at = json_str(code, "expires_at");
  d.wait_for(b + "auth/code/user_code", equals(user_code), 10s, since);
  d.wait_for(b + "auth/code/expires_at", equals(expires_at), 10s, since);
  d.wait_for(b + "auth/code/expires_at_epoch", equals(std::to_string(epoch_of(expires_at))), 10s,
             since);
  d.wait_for(b + "auth/state/state", equals("pending"), 10s, since);
  CHECK(d.retained_value(b + "auth/code/user_code") == user_code);

  // Signed in: the code's parts are cleared, the Graph fields appear as plain text.
  since = d.mark();
  s.simulator.approve(user_code);
  d.wait_for(b + "auth/state/state", equals("signed_in"), 15s, since);
  for (const char* leaf :
       {"auth/code/user_code", "auth/code/expires_at", "auth/code/expires_at_epoch"}) {
    INFO(leaf);
    d.wait_for(b + leaf, cleared, 10s, since);
  }
  const auto me = d.wait_for_json(
      b + "graph/me", [](const rapidjson::Value& v) { return v.HasMember("displayName"); }, 15s,
      since);
  const std::string name = json_str(me.json(), "displayName");
  d.wait_for(b + "graph/me/name", equals(name), 10s, since);  // a JSON string, unquoted
  // The whole body (pointer ""), as JSON text.
  const auto whole = d.wait_for(
      b + "graph/me/whole", [](const Message& m) { return !m.payload.empty(); }, 10s, since);
  CHECK(whole.json().HasMember("displayName"));
  const auto presence = d.wait_for_json(
      b + "graph/presence", [](const rapidjson::Value& v) { return v.HasMember("availability"); },
      15s, since);
  d.wait_for(b + "graph/presence/availability", equals(json_str(presence.json(), "availability")),
             10s, since);

  // Logout clears graph/R, and with it every field.
  since = d.mark();
  CHECK(json_str(d.request("logout", R"({"account":"kitchen"})"), "status") == "ok");
  d.wait_for(b + "auth/state/state", equals("signed_out"), 10s, since);
  for (const char* leaf : {"graph/me/name", "graph/me/whole", "graph/presence/availability"}) {
    INFO(leaf);
    d.wait_for(b + leaf, cleared, 10s, since);
    CHECK_FALSE(d.retained_value(b + leaf));
  }
}

TEST_CASE("display topics: without plain_topics there are no plain sub-topics") {
  ScenarioOptions o = plain_topics();
  o.mqtt_extra = "";
  Scenario s(o);
  s.sign_in();
  auto& d = s.display;
  d.wait_for_json(
      "graph2mqtt/kitchen/graph/me",
      [](const rapidjson::Value& v) { return v.HasMember("displayName"); }, 15s);
  d.sync();
  CHECK(d.messages("graph2mqtt/kitchen/graph/me/+").empty());
  CHECK(d.messages("graph2mqtt/kitchen/auth/state/+").empty());
  CHECK(d.messages("graph2mqtt/kitchen/auth/code/+").empty());
}

TEST_CASE("display topics: auth/qr of a browser sign-in holds its sign-in address") {
  Scenario s;
  auto& d = s.display;
  d.wait_for("graph2mqtt/kitchen/auth/qr", cleared);
  const auto since = d.mark();
  auto reply = d.request("login", R"({"account":"kitchen","method":"browser"})");
  REQUIRE(json_str(reply, "status") == "ok");
  const std::string url = json_str(reply["data"]["code"], "sign_in_url");
  REQUIRE(url.find("code_challenge=") != std::string::npos);
  const auto qr = d.wait_for(
      "graph2mqtt/kitchen/auth/qr", [](const Message& m) { return !m.payload.empty(); }, 10s,
      since);
  CHECK(zbar_read(s.tmp, qr.payload) == url);
  const auto after = d.mark();
  CHECK(json_str(d.request("cancel", R"({"account":"kitchen"})"), "status") == "ok");
  d.wait_for("graph2mqtt/kitchen/auth/qr", cleared, 10s, after);
}

TEST_CASE("display topics: auth/state.error says why a sign-in ended for an unknown tenant") {
  ScenarioOptions o;
  o.accounts = std::string("kitchen:\n  client_id: ") + kClientId +
               "\n  tenant: contoso-.com\n  sign_in_method: device_code\n";
  Scenario s(o);
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  const auto state = s.display.wait_for_json(
      "graph2mqtt/kitchen/auth/state",
      [](const rapidjson::Value& v) { return json_str(v, "reason") == "error"; }, 10s, since);
  const auto doc = state.json();
  REQUIRE(doc["error"].IsObject());
  CHECK_FALSE(json_str(doc["error"], "error").empty());
  CHECK(json_str(doc["error"], "description").find("AADSTS900023") != std::string::npos);
  CHECK(json_str(doc["error"], "description").find("contoso-.com") != std::string::npos);
  CHECK(doc["error"]["policy"].IsNull());
}
