#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/logger.h"
#include "loop/event_loop.h"
#include "mqtt/mqtt_client.h"

namespace g2m {

// The agent's side of the broker connection, on the loop thread. It remembers the current value
// of every retained topic and re-publishes all of them after each (re)connection, so a broker
// that lost its retained store is whole again; events and replies produced while the broker is
// unreachable wait in a bounded queue (CONTRACT §1 "Always").
class MqttSession {
 public:
  static constexpr std::size_t kMaxQueued = 1000;

  MqttSession(EventLoop& loop, MqttClient& client, Logger& log);

  // Connects in the background; `on_message` runs on the loop thread for every message.
  void start(std::function<void(MqttMessage)> on_message, std::vector<std::string> filters);
  // Publishes offline and disconnects (the caller has already published final states).
  void shutdown(const std::string& state_topic, Millis timeout);

  // Sets a retained topic's current value (an empty payload clears it) and publishes it now if
  // connected. `expires_at` adds the MQTT 5 message-expiry interval (the seconds left then).
  void set_retained(const std::string& topic, std::string payload,
                    std::optional<SystemTime> expires_at = std::nullopt);
  // Publishes a retained topic's current value again (Home Assistant's birth message asks for it).
  void republish(const std::string& topic);
  // A non-retained message (event or reply); queued while disconnected.
  void send(OutgoingMessage message);

  // Called with the reason when the first attempt of a series of failed connections fails (the
  // agent uses it to explain a failed TLS connection in the log).
  void on_connect_failure(std::function<void(const std::string&)> hook) {
    connect_failure_hook_ = std::move(hook);
  }

  // Called after every set_retained with its arguments (the derived topics of CONTRACT §1 follow
  // their parent topics this way); the hook may set other retained topics.
  using RetainedHook = std::function<void(const std::string& topic, const std::string& payload,
                                          std::optional<SystemTime> expires_at)>;
  void on_retained_set(RetainedHook hook) { retained_hook_ = std::move(hook); }
  // Called after each (re)connection, once the subscriptions are sent and before anything is
  // published (Home Assistant discovery reads the retained configs first).
  void on_connected(std::function<void()> hook) { connected_hook_ = std::move(hook); }

  bool connected() const { return connected_; }
  std::size_t queued() const { return queue_.size(); }
  std::size_t dropped() const { return dropped_; }
  const std::string* retained_value(const std::string& topic) const;
  int version() const { return client_.version(); }

 private:
  struct Retained {
    std::string payload;
    std::optional<SystemTime> expires_at;
  };
  void on_connected();
  void on_lost(const std::string& why);
  void schedule_reconnect();
  void flush();
  bool publish_retained(const std::string& topic, const Retained& value);

  EventLoop& loop_;
  MqttClient& client_;
  Logger& log_;
  std::vector<std::string> filters_;
  std::function<void(MqttMessage)> on_message_;
  std::function<void(const std::string&)> connect_failure_hook_;
  RetainedHook retained_hook_;
  std::function<void()> connected_hook_;
  bool connected_ = false;
  bool stopping_ = false;
  int reconnect_attempt_ = 0;
  Timer reconnect_timer_;
  Timer flush_timer_;
  // Insertion order is kept so bridge/state goes out before everything else after a reconnect.
  std::vector<std::string> retained_order_;
  std::unordered_map<std::string, Retained> retained_;
  std::unordered_set<std::string> dirty_;  // retained values not yet handed to the client
  std::deque<OutgoingMessage> queue_;
  std::size_t dropped_ = 0;
};

}  // namespace g2m
