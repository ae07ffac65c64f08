#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/logger.h"
#include "loop/event_loop.h"
#include "mqtt/mqtt_client.h"

namespace g2m {

// The agent's side of the broker connection, on the loop thread. It remembers the current value
// of every retained topic and re-publishes all of them after each (re)connection, so a broker
// that lost its retained store is whole again; events and replies produced while the broker is
// unreachable wait in a bounded queue (docs/mqtt-api.md "The connection to the broker").
//
// Delivery is paced by the broker, not by a timer: the client library is handed at most as many
// unacknowledged QoS 1/2 messages as the broker's Receive Maximum allows, and each acknowledgement
// hands over the next one (a new command is what wakes Paho C's send thread; a message it has to
// hold back waits for its 1-second poll, paho.mqtt.c#1404). Retained values go first (each
// topic's latest value once), then events and replies in the order they were produced.
class MqttSession {
 public:
  // Events and replies waiting while the broker is unreachable: at most this many, oldest dropped
  // first (docs/mqtt-api.md "The connection to the broker"). While connected nothing is dropped
  // for their number (a burst of 1,000 sign-ins behind a window of 20 is normal), only beyond
  // kMaxQueuedBytes, so that a broker that stops acknowledging cannot take all the memory.
  static constexpr std::size_t kMaxQueued = 1000;
  static constexpr std::size_t kMaxQueuedBytes = 64 * 1024 * 1024;
  // Left for a PUBLISH packet's own bytes (fixed header, topic, packet id, properties) when a
  // payload limit is derived from the broker's Maximum Packet Size.
  static constexpr std::size_t kPacketOverhead = 1024;

  MqttSession(EventLoop& loop, MqttClient& client, Logger& log);
  ~MqttSession();
  MqttSession(const MqttSession&) = delete;
  MqttSession& operator=(const MqttSession&) = delete;

  // Connects in the background; `on_message` runs on the loop thread for every message.
  void start(std::function<void(MqttMessage)> on_message, std::vector<std::string> filters);
  // Publishes offline, hands over what is still queued (waiting at most `timeout` in all for the
  // broker's acknowledgements) and disconnects (the caller has already published final states).
  void shutdown(const std::string& state_topic, Millis timeout);

  // Sets a retained topic's current value (an empty payload clears it) and publishes it now if
  // connected. `expires_at` adds the MQTT 5 message-expiry interval (the seconds left then). A
  // payload larger than max_payload_size() is refused (logged; the previous value stays).
  void set_retained(const std::string& topic, std::string payload,
                    std::optional<SystemTime> expires_at = std::nullopt);
  // Publishes a retained topic's current value again (Home Assistant's birth message asks for it).
  void republish(const std::string& topic);
  // A non-retained message (event or reply); queued while disconnected or while the broker's
  // window is full. One too large for the limits is dropped (logged).
  void send(OutgoingMessage message);

  // Called with the reason when the first attempt of a series of failed connections fails (the
  // agent uses it to explain a failed TLS connection in the log).
  void on_connect_failure(std::function<void(const std::string&)> hook) {
    connect_failure_hook_ = std::move(hook);
  }

  // Called after every set_retained with its arguments (the derived topics of docs/mqtt-api.md
  // "Topics the agent publishes" follow their parent topics this way); the hook may set other
  // retained topics.
  using RetainedHook = std::function<void(const std::string& topic, const std::string& payload,
                                          std::optional<SystemTime> expires_at)>;
  void on_retained_set(RetainedHook hook) { retained_hook_ = std::move(hook); }
  // Called after each (re)connection, once the subscriptions are sent and before anything is
  // published (Home Assistant discovery reads the retained configs first).
  void on_connected(std::function<void()> hook) { connected_hook_ = std::move(hook); }
  // The largest payload the session publishes: mqtt.max_message_size, or less when the broker's
  // Maximum Packet Size (from the last CONNACK) leaves less room (minus kPacketOverhead for the
  // packet's headers). A caller with a larger body refuses it before publishing (graph_error
  // too_large); the exact packet is checked again before it is handed to the client.
  std::size_t max_payload_size() const;

  bool connected() const { return connected_; }
  std::size_t queued() const { return queue_.size(); }
  // Events and replies dropped from the queue since start.
  std::size_t dropped() const { return dropped_; }
  // QoS 1/2 messages handed to the client and not yet acknowledged.
  std::size_t in_flight() const { return in_flight_.size(); }
  // Retained topics waiting to be handed over.
  std::size_t retained_pending() const { return pending_retained_.size(); }
  const std::string* retained_value(const std::string& topic) const;
  int version() const { return client_.version(); }

 private:
  struct Retained {
    std::string payload;
    std::optional<SystemTime> expires_at;
  };
  // Acknowledgements, from the client's threads to the loop thread (or to shutdown(), which
  // blocks it). Shared with the client's handlers.
  struct Mailbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::vector<std::uint64_t> delivered;  // ids, in arrival order
  };

  void on_connected(const ConnectionLimits& limits);
  void on_lost(const std::string& why, int reason);
  void take_delivered();
  Millis reconnect_delay(bool taken_over);
  void pump();
  bool fits(const OutgoingMessage& message, bool log_refusal) const;
  OutgoingMessage retained_message(const std::string& topic, const Retained& value) const;
  void mark_pending(const std::string& topic);
  void enqueue(OutgoingMessage message, bool front);
  void drop_oldest(const char* why);
  void report_drops();

  EventLoop& loop_;
  MqttClient& client_;
  Logger& log_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // posted tasks check it
  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  std::vector<std::string> filters_;
  std::function<void(MqttMessage)> on_message_;
  std::function<void(const std::string&)> connect_failure_hook_;
  RetainedHook retained_hook_;
  std::function<void()> connected_hook_;
  bool connected_ = false;
  bool stopping_ = false;
  // Reconnection (docs/mqtt-api.md "Topics the agent publishes"): every second for the first 10 s
  // of an outage, then backing off.
  std::optional<SteadyTime> outage_since_;
  int failed_attempts_ = 0;  // connect attempts failed since the last connection
  int backoff_step_ = 0;     // attempts made after the first 10 s
  SteadyTime connected_at_{};
  int short_lived_ = 0;  // connections in a row that the broker closed soon after accepting
  Timer reconnect_timer_;
  Timer retry_timer_;  // only when the client refused with nothing in flight (no ack will come)
  // This connection's limits.
  std::size_t window_ = 65535;
  std::optional<std::size_t> max_packet_;
  // Insertion order is kept so bridge/state goes out before everything else after a reconnect.
  std::vector<std::string> retained_order_;
  std::unordered_map<std::string, Retained> retained_;
  std::deque<std::string> pending_retained_;  // topics whose current value is not handed over
  std::unordered_set<std::string> pending_set_;
  std::deque<OutgoingMessage> queue_;
  // Handed over and not acknowledged, by id (hand-over order). Events are kept so that those a
  // lost connection takes with it are sent again after the reconnection; retained values are
  // re-published anyway.
  std::map<std::uint64_t, std::optional<OutgoingMessage>> in_flight_;
  std::uint64_t next_id_ = 1;
  std::size_t queued_bytes_ = 0;  // topics and payloads in queue_
  std::size_t dropped_ = 0;
  std::size_t dropped_unreported_ = 0;  // since the last log line about drops
};

}  // namespace g2m
