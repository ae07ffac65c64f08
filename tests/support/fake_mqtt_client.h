#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "fake_clock.h"
#include "mqtt/mqtt_client.h"

namespace g2m::test {

// The MQTT port without a broker: records what is published and subscribed; the test plays the
// broker (connected, lost, acknowledgements). With `auto_ack`, every publish is acknowledged at
// once, as by a broker with room.
class FakeMqttClient : public MqttClient {
 public:
  Handlers handlers;
  bool up = false;
  bool detached = false;
  int refuse_next = 0;    // publishes refused while connected (a full client buffer)
  bool auto_ack = false;  // acknowledge inside publish() (a broker that answers at once)
  std::size_t max_message = 1024 * 1024;
  std::vector<OutgoingMessage> sent;
  std::deque<std::uint64_t> unacked;  // ids handed over and not acknowledged, oldest first
  std::size_t most_unacked = 0;       // the largest number ever unacknowledged at once
  std::vector<std::string> subscribed;
  std::vector<SteadyTime> reconnects;  // when reconnect() was called
  std::function<void()> on_reconnect;  // what the "broker" does then
  const test::FakeClock* clock = nullptr;

  void start(Handlers h) override { handlers = std::move(h); }
  void detach() override {
    detached = true;
    handlers = Handlers{};
  }
  void reconnect() override {
    if (clock != nullptr) reconnects.push_back(clock->steady());
    if (on_reconnect) on_reconnect();
  }
  Publish publish(const OutgoingMessage& m, std::uint64_t id) override {
    if (!up) return Publish::not_now;
    if (refuse_next > 0) {
      --refuse_next;
      return Publish::not_now;
    }
    sent.push_back(m);
    if (auto_ack) {
      handlers.delivered(id);
      return Publish::sent;
    }
    unacked.push_back(id);
    most_unacked = std::max(most_unacked, unacked.size());
    return Publish::sent;
  }
  void subscribe(const std::string& filter, int) override { subscribed.push_back(filter); }
  void stop(Millis) override { up = false; }
  int version() const override { return 5; }
  std::size_t max_message_size() const override { return max_message; }
  std::string client_id() const override { return "graph2mqtt-gw"; }

  // The broker acknowledges the oldest `n` messages (each posts to the loop).
  void ack(std::size_t n = 1) {
    for (std::size_t i = 0; i < n && !unacked.empty(); ++i) {
      handlers.delivered(unacked.front());
      unacked.pop_front();
    }
  }
};

// A broker with room: connected, every publish acknowledged at once.
struct ConnectedMqttClient : FakeMqttClient {
  ConnectedMqttClient() {
    up = true;
    auto_ack = true;
  }
};

}  // namespace g2m::test
