#include <doctest/doctest.h>

#include "mqtt/topics.h"

using namespace g2m;

TEST_CASE("topics: the bridge's topics are under B/bridge/") {
  CHECK(topics::bridge_state("g2m") == "g2m/bridge/state");
  CHECK(topics::bridge_info("g2m") == "g2m/bridge/info");
  CHECK(topics::bridge_request("g2m", "login") == "g2m/bridge/request/login");
  CHECK(topics::bridge_request_filter("g2m") == "g2m/bridge/request/#");
  CHECK(topics::bridge_response("g2m", "login") == "g2m/bridge/response/login");
  CHECK(topics::bridge_response_prefix("g2m") == "g2m/bridge/response/");
  // A base with levels of its own stays as it is.
  CHECK(topics::bridge_state("home/g2m") == "home/g2m/bridge/state");
}

TEST_CASE("topics: an account's topics are under B/A/") {
  CHECK(topics::auth_state("g2m", "kitchen") == "g2m/kitchen/auth/state");
  CHECK(topics::auth_code("g2m", "kitchen") == "g2m/kitchen/auth/code");
  CHECK(topics::auth_qr("g2m", "kitchen") == "g2m/kitchen/auth/qr");
  CHECK(topics::events("g2m", "kitchen") == "g2m/kitchen/events");
  CHECK(topics::graph("g2m", "kitchen", "presence") == "g2m/kitchen/graph/presence");
  const AccountTopics t("g2m", "hall");
  CHECK(t.auth_state() == "g2m/hall/auth/state");
  CHECK(t.auth_code() == "g2m/hall/auth/code");
  CHECK(t.auth_qr() == "g2m/hall/auth/qr");
  CHECK(t.events() == "g2m/hall/events");
  CHECK(t.graph("me") == "g2m/hall/graph/me");
}

TEST_CASE("topics: the action is the rest of a request topic, nothing else is a request") {
  CHECK(topics::request_action("g2m", "g2m/bridge/request/login") == "login");
  CHECK(topics::request_action("g2m", "g2m/bridge/request/login/now") == "login/now");
  CHECK(topics::request_action("g2m", "g2m/bridge/request/") == "");
  CHECK_FALSE(topics::request_action("g2m", "g2m/bridge/response/login"));
  CHECK_FALSE(topics::request_action("g2m", "g2mx/bridge/request/login"));
  CHECK_FALSE(topics::request_action("g2m", "g2m/bridge/request"));
}

TEST_CASE("topics: Home Assistant's status and what lies under a prefix") {
  CHECK(topics::homeassistant_status("homeassistant") == "homeassistant/status");
  CHECK(topics::is_under("homeassistant/status", "homeassistant"));
  CHECK(topics::is_under("homeassistant", "homeassistant"));
  CHECK_FALSE(topics::is_under("homeassistantx/status", "homeassistant"));
  CHECK_FALSE(topics::is_under("home", "homeassistant"));
}
