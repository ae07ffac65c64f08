// The templates in the discovery configs, rendered the way Home Assistant renders them (Jinja2's
// immutable sandbox, tests/homeassistant/render-templates, Debian's python3-jinja2) against the
// payloads the agent publishes: states, attributes under Home Assistant's 16 KiB, the sign-in URL.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "homeassistant/discovery.h"
#include "json/json.h"

using namespace g2m;

namespace {

Config kitchen() {
  return parse_config(
      "mqtt:\n  server: mqtt://localhost\nhomeassistant:\n  enabled: true\naccounts:\n  kitchen:\n "
      "   client_id: "
      "00000000-0000-0000-0000-000000000001\n    resources:\n"
      "      presence: { path: \"/me/presence?$select=availability\" }\n"
      "      today: { path: /me/calendarView }\n"
      "      next: { path: /me/events, ha_state: \"{{ value_json.value[0].subject }}\" }\n"
      "      me: { path: /me }\n",
      "config.yaml");
}

rapidjson::Document kitchen_device() {
  for (const auto& [topic, payload] : discovery_messages(kitchen())) {
    if (topic == "homeassistant/device/graph2mqtt_kitchen/config") {
      return *json::parse_object(payload);
    }
  }
  FAIL("no device config for kitchen");
  return {};
}

std::string component_template(const char* key, const char* which) {
  static const rapidjson::Document device = kitchen_device();
  return json::get_string(device["components"][key], which).value_or("<none>");
}

struct Rendered {
  bool ok = false;
  std::string result;  // or the error
};

// Renders each (template, payload) with the script, in one run.
std::vector<Rendered> render(const std::vector<std::pair<std::string, std::string>>& cases) {
  std::string input = "[";
  for (const auto& [t, p] : cases) {
    if (input.size() > 1) input += ",";
    input += json::object([&](json::Fields& f) { f.str("template", t).str("payload", p); });
  }
  input += "]";
  char path[] = "/tmp/g2m-templates-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << input;
  const std::string command =
      std::string(G2M_SOURCE_DIR) + "/tests/homeassistant/render-templates < " + path;
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(path);
  auto doc = json::parse(out);
  REQUIRE_MESSAGE(doc, "render-templates printed no JSON (is python3-jinja2 installed?): " << out);
  REQUIRE(doc->IsArray());
  std::vector<Rendered> results;
  for (const auto& r : doc->GetArray()) {
    const bool ok = r["ok"].GetBool();
    results.push_back({ok, json::get_string(r, ok ? "result" : "error").value_or("")});
  }
  REQUIRE(results.size() == cases.size());
  return results;
}

std::string calendar(int events) {
  std::string body = R"({"@odata.context":"https://graph.microsoft.com/v1.0/$metadata","value":[)";
  for (int i = 0; i < events; ++i) {
    if (i > 0) body += ",";
    body += R"({"id":"AAMkAG)" + std::to_string(i) + R"(","subject":"Meeting )" +
            std::to_string(i) +
            R"(","bodyPreview":"Agenda: status, risks, next steps, and a few words more",)"
            R"("start":{"dateTime":"2026-12-04T09:00:00.0000000","timeZone":"UTC"}})";
  }
  return body + "]}";
}

}  // namespace

TEST_CASE("home assistant templates: resource states as Home Assistant renders them") {
  const auto count = component_template("graph_today", "value_template");
  const auto presence = component_template("graph_presence", "value_template");
  const auto own = component_template("graph_next", "value_template");
  const auto profile = component_template("graph_me", "value_template");
  const auto r = render({
      {presence, R"({"availability":"Busy","activity":"InAMeeting"})"},
      {count, calendar(3)},
      {count, R"({"value":[]})"},
      {profile, R"({"displayName":"Adele Vance","mail":"adele@contoso.com"})"},
      {own, R"({"value":[{"subject":"Stand-up"}]})"},
  });
  for (const auto& x : r) CHECK_MESSAGE(x.ok, x.result);
  CHECK(r[0].result == "Busy");
  CHECK(r[1].result == "3");
  CHECK(r[2].result == "0");
  CHECK(r[3].result == "ok");  // no receive time: it changes only when the body does
  CHECK(r[4].result == "Stand-up");
}

TEST_CASE("home assistant templates: a 500-event calendar's attributes stay under 16 KiB") {
  const auto attributes = component_template("graph_today", "json_attributes_template");
  const std::string big = calendar(500);
  REQUIRE(big.size() > 50'000);
  const auto r = render({{attributes, big}, {attributes, calendar(2)}, {attributes, "not json"}});
  REQUIRE_MESSAGE(r[0].ok, r[0].result);
  CHECK(r[0].result.size() < 16 * 1024);
  auto kept = json::parse_object(r[0].result);
  REQUIRE(kept);  // a JSON object, as json_attributes_template must render
  REQUIRE((*kept)["value"].IsArray());
  const auto n = (*kept)["value"].Size();
  CHECK(n > 10);  // the first events, as many as fit
  CHECK(n < 500);
  CHECK(json::get_string((*kept)["value"][0], "subject") ==
        std::optional<std::string>("Meeting 0"));
  CHECK(kept->HasMember("@odata.context"));
  // A small body is kept whole.
  auto small = json::parse_object(r[1].result);
  REQUIRE(small);
  CHECK((*small)["value"].Size() == 2);
  // Not JSON: no attributes rather than a template error.
  REQUIRE_MESSAGE(r[2].ok, r[2].result);
  CHECK(r[2].result == "{}");
}

TEST_CASE("home assistant templates: the sign-in state's attributes lift the sign-in URL out") {
  const auto state = component_template("auth_state", "value_template");
  const auto attributes = component_template("auth_state", "json_attributes_template");
  const std::string browser =
      R"({"state":"pending","since":"2026-12-04T09:00:00Z","user":null,"reason":null,)"
      R"("code":{"method":"browser","user_code":null,"verification_uri":null,)"
      R"("sign_in_url":"https://login.microsoftonline.com/common/oauth2/v2.0/authorize?x=1",)"
      R"("expires_at":"2026-12-04T09:15:00Z"},"expires_at":"2026-12-04T09:15:00Z"})";
  const std::string device_code =
      R"({"state":"pending","code":{"method":"device_code","user_code":"E4AAFX9VN",)"
      R"("verification_uri":"https://microsoft.com/devicelogin","sign_in_url":null}})";
  const std::string signed_in = R"({"state":"signed_in","code":null,"user":{"name":"Adele"}})";
  const auto r = render({{state, browser},
                         {attributes, browser},
                         {attributes, device_code},
                         {attributes, signed_in}});
  for (const auto& x : r) REQUIRE_MESSAGE(x.ok, x.result);
  CHECK(r[0].result == "pending");
  auto b = json::parse_object(r[1].result);
  REQUIRE(b);
  CHECK(json::get_string(*b, "sign_in_url") ==
        std::optional<std::string>(
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?x=1"));
  CHECK(json::get_string(*b, "state") == std::optional<std::string>("pending"));
  CHECK((*b)["code"].IsObject());  // everything of auth/state is still there
  auto d = json::parse_object(r[2].result);
  REQUIRE(d);
  CHECK(json::get_string(*d, "user_code") == std::optional<std::string>("E4AAFX9VN"));
  CHECK(json::get_string(*d, "verification_uri") ==
        std::optional<std::string>("https://microsoft.com/devicelogin"));
  CHECK((*d)["sign_in_url"].IsNull());
  auto s = json::parse_object(r[3].result);
  REQUIRE(s);
  CHECK((*s)["sign_in_url"].IsNull());
  CHECK((*s)["user_code"].IsNull());
}
