// auth/qr and the plain sub-topics follow their parent topics (docs/mqtt-api.md "Topics the agent
// publishes").
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include "mqtt/derived_topics.h"
#include "mqtt_rig.h"

using namespace g2m;

namespace {

Config config(bool plain) {
  return parse_config(std::string("mqtt:\n  server: mqtt://localhost\n  plain_topics: ") +
                          (plain ? "true" : "false") +
                          "\naccounts:\n  kitchen:\n    client_id: "
                          "00000000-0000-0000-0000-000000000001\n    resources:\n"
                          "      today:\n        path: /me/events\n        fields:\n"
                          "          next: /value/0/subject\n          count: /value/0/n\n"
                          "          first: /value/0\n          tilde: /a~1b\n",
                      "config.yaml");
}

struct World : test::MqttRig {
  explicit World(bool plain) : cfg(config(plain)), derived(cfg, session) {
    session.on_retained_set(
        [this](const std::string& t, const std::string& p, std::optional<SystemTime> at) {
          derived.on_retained(t, p, at);
        });
    session.start([](MqttMessage) {}, {});
    client.handlers.connected({});
    loop.run_once(Millis(0));
  }
  std::string value(const std::string& topic) const {
    const auto* v = session.retained_value(topic);
    return v ? *v : "<unset>";
  }
  std::optional<std::uint32_t> expiry_sent(const std::string& topic) const {
    for (auto it = client.sent.rbegin(); it != client.sent.rend(); ++it) {
      if (it->topic == topic) return it->expiry_seconds;
    }
    return std::nullopt;
  }
  Config cfg;
  DerivedTopics derived;
};

std::string zbar_read(const std::string& png) {
  char path[] = "/tmp/g2m-qr-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << png;
  std::string out;
  if (FILE* p =
          popen(("zbarimg --quiet --raw " + std::string(path) + " 2>/dev/null").c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(path);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const char* const kDeviceCode =
    R"({"method":"device_code","user_code":"E4AAFX9VN","verification_uri":"https://microsoft.com/devicelogin","verification_uri_complete":null,"sign_in_url":null,"message":"m","expires_at":"2026-11-26T19:15:00Z","interval":5})";

}  // namespace

TEST_CASE("derived topics: the QR code holds the address to open, in the contract's order") {
  CHECK(qr_address(kDeviceCode) == "https://microsoft.com/devicelogin");
  CHECK(
      qr_address(
          R"({"verification_uri":"https://a/x","verification_uri_complete":"https://a/x?c=1"})") ==
      "https://a/x?c=1");
  CHECK(
      qr_address(
          R"({"method":"browser","user_code":null,"verification_uri":null,"sign_in_url":"https://login/authorize?s=1"})") ==
      "https://login/authorize?s=1");
  CHECK_FALSE(qr_address(R"({"user_code":"X"})"));
  CHECK_FALSE(qr_address("not json"));
}

TEST_CASE("derived topics: auth/qr is set with auth/code, with its expiry, and cleared with it") {
  World w(false);
  const SystemTime expiry = w.clock.system() + Seconds(600);
  w.session.set_retained("graph2mqtt/kitchen/auth/code", kDeviceCode, expiry);
  const std::string png = w.value("graph2mqtt/kitchen/auth/qr");
  CHECK(zbar_read(png) == "https://microsoft.com/devicelogin");
  CHECK(w.expiry_sent("graph2mqtt/kitchen/auth/qr") == 600u);
  // Without plain_topics, no plain sub-topics.
  CHECK(w.value("graph2mqtt/kitchen/auth/code/user_code") == "<unset>");
  w.session.set_retained("graph2mqtt/kitchen/auth/code", "");
  CHECK(w.value("graph2mqtt/kitchen/auth/qr").empty());
}

TEST_CASE("derived topics: a renewed code with the same URI re-sends auth/qr with its expiry") {
  World w(false);
  w.session.set_retained("graph2mqtt/kitchen/auth/code", kDeviceCode,
                         w.clock.system() + Seconds(600));
  const auto first = w.client.sent.size();
  // slow_down re-publishes auth/code with the same expiry: nothing new to draw.
  w.session.set_retained("graph2mqtt/kitchen/auth/code", kDeviceCode,
                         w.clock.system() + Seconds(600));
  CHECK(w.client.sent.size() == first + 1);
  w.clock.advance(Seconds(600));
  w.session.set_retained("graph2mqtt/kitchen/auth/code", kDeviceCode,
                         w.clock.system() + Seconds(900));
  CHECK(w.expiry_sent("graph2mqtt/kitchen/auth/qr") == 900u);
}

TEST_CASE("derived topics: plain sub-topics of auth/code and auth/state") {
  World w(true);
  w.session.set_retained("graph2mqtt/kitchen/auth/state",
                         R"({"state":"signed_out","since":"2026-11-26T19:00:00Z"})");
  CHECK(w.value("graph2mqtt/kitchen/auth/state/state") == "signed_out");
  w.session.set_retained("graph2mqtt/kitchen/auth/code", kDeviceCode,
                         w.clock.system() + Seconds(900));
  CHECK(w.value("graph2mqtt/kitchen/auth/code/user_code") == "E4AAFX9VN");
  CHECK(w.value("graph2mqtt/kitchen/auth/code/expires_at") == "2026-11-26T19:15:00Z");
  CHECK(w.value("graph2mqtt/kitchen/auth/code/expires_at_epoch") == "1795720500");
  CHECK(w.expiry_sent("graph2mqtt/kitchen/auth/code/user_code") == 900u);
  w.session.set_retained("graph2mqtt/kitchen/auth/state", R"({"state":"pending"})");
  CHECK(w.value("graph2mqtt/kitchen/auth/state/state") == "pending");

  SUBCASE("an unchanged state is not sent again") {
    const auto before = w.client.sent.size();
    w.session.set_retained("graph2mqtt/kitchen/auth/state", R"({"state":"pending","user":null})");
    CHECK(w.client.sent.size() == before + 1);  // auth/state itself only
  }
  SUBCASE("cleared together with auth/code") {
    w.session.set_retained("graph2mqtt/kitchen/auth/code", "");
    CHECK(w.value("graph2mqtt/kitchen/auth/code/user_code").empty());
    CHECK(w.value("graph2mqtt/kitchen/auth/code/expires_at").empty());
    CHECK(w.value("graph2mqtt/kitchen/auth/code/expires_at_epoch").empty());
    CHECK(w.value("graph2mqtt/kitchen/auth/qr").empty());
  }
  SUBCASE("a browser sign-in has no user code: that sub-topic stays clear") {
    w.session.set_retained(
        "graph2mqtt/kitchen/auth/code",
        R"({"method":"browser","user_code":null,"sign_in_url":"https://login.example/authorize?state=1","expires_at":"2026-11-26T19:15:00Z"})");
    CHECK(w.value("graph2mqtt/kitchen/auth/code/user_code").empty());
    CHECK(zbar_read(w.value("graph2mqtt/kitchen/auth/qr")) ==
          "https://login.example/authorize?state=1");
  }
}

TEST_CASE("derived topics: resource fields as plain text, cleared with graph/R") {
  World w(true);
  w.session.set_retained("graph2mqtt/kitchen/graph/today",
                         R"({"value":[{"subject":"Stand-up","n":3}],"a/b":true})");
  CHECK(w.value("graph2mqtt/kitchen/graph/today/next") == "Stand-up");  // a string, unquoted
  CHECK(w.value("graph2mqtt/kitchen/graph/today/count") == "3");
  CHECK(w.value("graph2mqtt/kitchen/graph/today/first") == R"({"subject":"Stand-up","n":3})");
  CHECK(w.value("graph2mqtt/kitchen/graph/today/tilde") == "true");

  SUBCASE("a value the body lacks clears its sub-topic") {
    w.session.set_retained("graph2mqtt/kitchen/graph/today", R"({"value":[]})");
    CHECK(w.value("graph2mqtt/kitchen/graph/today/next").empty());
    CHECK(w.value("graph2mqtt/kitchen/graph/today/first").empty());
  }
  SUBCASE("clearing graph/R clears every field") {
    w.session.set_retained("graph2mqtt/kitchen/graph/today", "");
    CHECK(w.value("graph2mqtt/kitchen/graph/today/next").empty());
    CHECK(w.value("graph2mqtt/kitchen/graph/today/count").empty());
  }
}

TEST_CASE("derived topics: without plain_topics graph/R has no sub-topics") {
  World w(false);
  w.session.set_retained("graph2mqtt/kitchen/graph/today", R"({"value":[{"subject":"x"}]})");
  CHECK(w.value("graph2mqtt/kitchen/graph/today/next") == "<unset>");
  w.session.set_retained("graph2mqtt/kitchen/auth/state", R"({"state":"signed_in"})");
  CHECK(w.value("graph2mqtt/kitchen/auth/state/state") == "<unset>");
}
