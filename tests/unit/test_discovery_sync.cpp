// The start-up order of Home Assistant discovery (docs/mqtt-api.md "Home Assistant"), on the fake
// clock: collect the retained configs until the marker comes back, migrate, publish, clear;
// deadlines when the broker does not answer.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "homeassistant/discovery_sync.h"
#include "mqtt_rig.h"

using namespace g2m;

namespace {

const std::string kOwn = R"({"availability":[{"topic":"graph2mqtt/bridge/state"}]})";
const std::string kOldState = "homeassistant/sensor/graph2mqtt_kitchen/auth_state/config";
const std::string kDevice = "homeassistant/device/graph2mqtt_kitchen/config";

struct World : test::MqttRig {
  explicit World(bool enabled = true)
      : cfg(parse_config(std::string("mqtt:\n  server: mqtt://localhost\nhomeassistant:\n  "
                                     "enabled: ") +
                             (enabled ? "true" : "false") +
                             "\naccounts:\n  kitchen:\n    client_id: "
                             "00000000-0000-0000-0000-000000000001\n",
                         "config.yaml")),
        sync(cfg, loop, session, client, log) {
    sync.start();
    session.start([](MqttMessage) {}, sync.filters());
    client.handlers.connected({});
    loop.run_once(Millis(0));
  }
  void deliver(const std::string& topic, const std::string& payload, bool retained = true) {
    MqttMessage m;
    m.topic = topic;
    m.payload = payload;
    m.retained = retained;
    CHECK(sync.on_message(m));
  }
  // The broker passing back what the agent published (it is subscribed to those topics).
  void echo_from(std::size_t from) {
    const auto copy = client.sent;
    for (std::size_t i = from; i < copy.size(); ++i) {
      if (copy[i].topic.rfind("homeassistant/", 0) == 0) deliver(copy[i].topic, copy[i].payload);
    }
  }
  std::size_t first(const std::string& topic, const std::string& payload_part,
                    std::size_t from = 0) const {
    for (std::size_t i = from; i < client.sent.size(); ++i) {
      if (client.sent[i].topic == topic &&
          client.sent[i].payload.find(payload_part) != std::string::npos) {
        return i;
      }
    }
    return client.sent.size();
  }
  bool sent_to(const std::string& topic) const { return first(topic, "") < client.sent.size(); }
  void marker_back() {
    const auto i = first("homeassistant/graph2mqtt/graph2mqtt_bridge/sync", "");
    REQUIRE(i < client.sent.size());
    deliver(client.sent[i].topic, client.sent[i].payload, false);
  }
  void advance(Millis d) {
    clock.advance(d);
    loop.run_once(Millis(0));
  }

  Config cfg;
  DiscoverySync sync;
};

}  // namespace

TEST_CASE("discovery sync: it subscribes to the discovery configs and publishes nothing first") {
  World w;
  CHECK(std::count(w.client.subscribed.begin(), w.client.subscribed.end(),
                   "homeassistant/+/+/config") == 1);
  CHECK(std::count(w.client.subscribed.begin(), w.client.subscribed.end(),
                   "homeassistant/+/+/+/config") == 1);
  CHECK(std::count(w.client.subscribed.begin(), w.client.subscribed.end(),
                   "homeassistant/status") == 1);
  CHECK_FALSE(w.sent_to(kDevice));
  w.marker_back();
  CHECK(w.sent_to(kDevice));
  CHECK(w.sync.done());
}

TEST_CASE("discovery sync: migrate, then the device config, then the clear, each after the echo") {
  World w;
  w.deliver(kOldState, kOwn);
  w.marker_back();
  const auto migrate = w.first(kOldState, "migrate_discovery");
  REQUIRE(migrate < w.client.sent.size());
  CHECK(w.client.sent[migrate].retain);
  CHECK_FALSE(w.sent_to(kDevice));  // not before the broker has passed the migration on
  w.echo_from(migrate);
  const auto device = w.first(kDevice, "components");
  REQUIRE(device < w.client.sent.size());
  CHECK(w.first(kOldState, "", migrate + 1) == w.client.sent.size());  // not cleared yet
  w.echo_from(migrate + 1);  // both device configs: the bridge's and the account's
  const auto cleared = w.first(kOldState, "", device);
  REQUIRE(cleared < w.client.sent.size());
  CHECK(w.client.sent[cleared].payload.empty());
  CHECK(w.client.sent[cleared].retain);
  CHECK(w.sync.done());
}

TEST_CASE("discovery sync: without the marker, the collection ends on its deadline") {
  World w;
  w.deliver(kDevice, kOwn);
  w.advance(Millis(2900));
  CHECK_FALSE(w.sent_to(kDevice));
  w.advance(Millis(200));
  CHECK(w.first(kDevice, "components") < w.client.sent.size());
}

TEST_CASE("discovery sync: without echoes each step goes on after its deadline") {
  World w;
  w.deliver(kOldState, kOwn);
  w.marker_back();
  CHECK_FALSE(w.sent_to(kDevice));
  w.advance(Millis(5100));
  const auto device = w.first(kDevice, "components");
  REQUIRE(device < w.client.sent.size());
  w.advance(Millis(5100));
  CHECK(w.first(kOldState, "", device) < w.client.sent.size());
  CHECK(w.sync.done());
}

TEST_CASE("discovery sync: disabled, it clears its own configs and leaves others alone") {
  World w(false);
  CHECK(std::count(w.client.subscribed.begin(), w.client.subscribed.end(),
                   "homeassistant/status") == 0);
  w.deliver(kDevice, kOwn);
  w.deliver("homeassistant/sensor/other_kitchen/x/config",
            R"({"availability":[{"topic":"other/bridge/state"}]})");
  w.marker_back();
  const auto cleared = w.first(kDevice, "");
  REQUIRE(cleared < w.client.sent.size());
  CHECK(w.client.sent[cleared].payload.empty());
  CHECK_FALSE(w.sent_to("homeassistant/sensor/other_kitchen/x/config"));
  CHECK_FALSE(w.sent_to("homeassistant/device/graph2mqtt_bridge/config"));
}

TEST_CASE("discovery sync: Home Assistant's birth message re-publishes the device configs") {
  World w;
  w.marker_back();
  const auto before = w.client.sent.size();
  w.deliver("homeassistant/status", "online", false);
  CHECK(w.first(kDevice, "components", before) < w.client.sent.size());
  CHECK(w.first("homeassistant/device/graph2mqtt_bridge/config", "components", before) <
        w.client.sent.size());
  // Requests and other agents' topics are not discovery's business.
  MqttMessage request;
  request.topic = "graph2mqtt/bridge/request/login";
  CHECK_FALSE(w.sync.on_message(request));
}

namespace {

Config two_accounts_config() {
  return parse_config(
      "mqtt:\n  server: mqtt://localhost\nhomeassistant:\n  enabled: true\naccounts:\n"
      "  hall:\n    client_id: 00000000-0000-0000-0000-000000000002\n",
      "config.yaml");
}

const std::string kHallDevice = "homeassistant/device/graph2mqtt_hall/config";

}  // namespace

TEST_CASE("discovery sync: a reload publishes the added account's device and clears the removed") {
  World w;
  w.marker_back();
  REQUIRE(w.sync.done());
  const auto before = w.client.sent.size();
  const Config fresh = two_accounts_config();  // kitchen removed, hall added
  w.sync.reconfigure(fresh);
  w.loop.run_once(Millis(0));
  CHECK(w.first(kHallDevice, "components", before) < w.client.sent.size());
  const auto cleared = w.first(kDevice, "", before);
  REQUIRE(cleared < w.client.sent.size());
  CHECK(w.client.sent[cleared].payload.empty());
  // The bridge device is the same: not sent again.
  CHECK(w.first("homeassistant/device/graph2mqtt_bridge/config", "", before) ==
        w.client.sent.size());
  // Home Assistant's birth message brings back the new set only.
  const auto birth = w.client.sent.size();
  w.deliver("homeassistant/status", "online", false);
  w.loop.run_once(Millis(0));
  CHECK(w.first(kHallDevice, "components", birth) < w.client.sent.size());
  CHECK(w.first(kDevice, "components", birth) == w.client.sent.size());
}

TEST_CASE("discovery sync: a reload during the start-up migration is applied once it is done") {
  World w;
  w.deliver(kOldState, kOwn);
  w.marker_back();
  const auto migrate = w.first(kOldState, "migrate_discovery");
  REQUIRE(migrate < w.client.sent.size());
  const Config fresh = two_accounts_config();
  w.sync.reconfigure(fresh);
  w.echo_from(migrate);
  w.echo_from(migrate + 1);
  w.loop.run_once(Millis(0));
  REQUIRE(w.sync.done());
  // The start-up plan published kitchen's device; the reload then replaced it with hall's.
  const auto hall = w.first(kHallDevice, "components");
  REQUIRE(hall < w.client.sent.size());
  const auto cleared = w.first(kDevice, "", w.first(kDevice, "components") + 1);
  REQUIRE(cleared < w.client.sent.size());
  CHECK(w.client.sent[cleared].payload.empty());
}
