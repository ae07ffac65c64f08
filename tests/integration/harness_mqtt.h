// MqttProbe: a display's (or Home Assistant's) view of the broker. It records every message it
// receives and lets a test wait for the one it expects, with a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "harness_util.h"

namespace mqtt {
class async_client;
}

namespace g2m::test {

class Mosquitto;

// One message as the probe received it.
struct Message {
  std::size_t index = 0;  // 0, 1, 2 ... in order of arrival (see MqttProbe::mark)
  std::string topic{};
  std::string payload{};
  bool retained = false;  // true only for a retained message replayed on subscription
  int qos = 0;
  std::optional<int> message_expiry{};  // MQTT 5 properties, when present
  std::optional<std::string> response_topic{};
  std::optional<std::string> correlation_data{};
  SteadyClock::time_point arrived{};

  rapidjson::Document json() const;  // fails the test when the payload is not JSON
  std::string describe() const;      // one line for failure dumps
};

// True when `topic` matches the MQTT topic filter `filter` (+ and # wildcards).
bool topic_matches(std::string_view filter, std::string_view topic);

struct ProbeOptions {
  std::string url{};                      // mqtt://, mqtts://, ws:// or wss:// 127.0.0.1:PORT
  std::vector<std::string> filters{"#"};  // subscribed at QoS 1, again after each reconnect
  int version = 5;                        // 5, or 4 for MQTT 3.1.1
  std::string username{};                 // "" = none
  std::string password{};
  std::filesystem::path ca{};               // TLS trust anchor (mqtts/wss)
  std::filesystem::path cert{}, key{};      // optional TLS client certificate
  std::string client_id{};                  // "" = a unique one
  std::string base_topic = "graph2mqtt";    // for request() / request_v5()
  std::chrono::milliseconds timeout = 10s;  // connect + subscribe
};

// A message to publish, with the MQTT 5 properties a test may set.
struct Outgoing {
  std::string topic{};
  std::string payload{};
  bool retain = false;
  int qos = 1;
  std::optional<std::string> response_topic{};
  std::optional<std::string> correlation_data{};
  std::optional<int> message_expiry{};
};

// Connects once with `options` and disconnects: nullopt on success, else Paho's error text
// (with the MQTT reason code), e.g. for "a wrong password is refused".
std::optional<std::string> try_connect(const ProbeOptions& options);

class MqttProbe {
 public:
  // Connects, subscribes and returns once the subscriptions are active (else fails the test).
  // Reconnects by itself (every 100 ms while the broker is away) and subscribes again.
  explicit MqttProbe(ProbeOptions options);
  explicit MqttProbe(const Mosquitto& broker, std::string base_topic = "graph2mqtt");
  ~MqttProbe();
  MqttProbe(const MqttProbe&) = delete;
  MqttProbe& operator=(const MqttProbe&) = delete;

  using Match = std::function<bool(const Message&)>;
  using JsonMatch = std::function<bool(const rapidjson::Value&)>;

  // The number of messages received so far: pass it as `since` to wait for "the next X after
  // I did Y".
  std::size_t mark() const;

  // The first message with index >= since on a topic matching `filter` (a topic or a filter)
  // for which `match` (if given) is true — including messages already received, retained ones
  // too. Fails the test with the last 30 messages after `timeout`.
  Message wait_for(std::string_view filter, const Match& match = {},
                   std::chrono::milliseconds timeout = 10s, std::size_t since = 0);
  // Same, for JSON payloads only (others, such as an empty "cleared" payload, never match).
  Message wait_for_json(std::string_view filter, const JsonMatch& match,
                        std::chrono::milliseconds timeout = 10s, std::size_t since = 0);

  std::vector<Message> messages(std::string_view filter = "#") const;
  std::optional<Message> last(std::string_view filter) const;
  std::string dump(std::size_t count = 30) const;  // the last `count` messages, one a line

  // What a new subscriber to `filter` would get now: a fresh client subscribes, then publishes a
  // marker on a unique topic; every retained message before the marker comes back is the answer.
  std::vector<Message> fetch_retained(const std::string& filter,
                                      std::chrono::milliseconds timeout = 10s) const;
  // The retained payload of one topic (nullopt when the broker holds none, e.g. after a clear).
  std::optional<std::string> retained_value(const std::string& topic,
                                            std::chrono::milliseconds timeout = 10s) const;

  // Publishes and waits for the broker's acknowledgement (QoS 1/2) or the send (QoS 0).
  void publish(const std::string& topic, const std::string& payload, bool retain = false,
               int qos = 1);
  void publish(const Outgoing& message);
  // The same without failing the test: nullopt once acknowledged, else Paho's error (an MQTT 5
  // broker refuses a publish the ACL denies with reason code 135, "Not authorized").
  std::optional<std::string> try_publish(const Outgoing& message);

  // Publishes `payload` (a JSON object; "" counts as {}) to B/bridge/request/<action>, adding a
  // unique "transaction" unless it has one, and returns the reply on B/bridge/response/<action>
  // that echoes it. (A null transaction is never echoed: use publish + wait_for for that.)
  rapidjson::Document request(const std::string& action, std::string_view payload = "{}",
                              std::chrono::milliseconds timeout = 10s);
  // MQTT 5 request/response: publishes with the response-topic and correlation-data properties
  // and returns the first message on `response_topic` carrying that correlation data.
  Message request_v5(const std::string& action, std::string_view payload,
                     const std::string& response_topic, const std::string& correlation_data,
                     std::chrono::milliseconds timeout = 10s);

  // Round-trips a marker through the broker: every message the broker routed to this probe
  // before now has then been received.
  void sync(std::chrono::milliseconds timeout = 10s);

  // Subscribes to one more filter now (and after each reconnection); no-op if already covered.
  void subscribe(const std::string& filter);

  bool connected() const;
  // The number of (re)connections whose subscriptions are active; wait_connects(n) waits until
  // it is at least n (take connects() before breaking the broker, wait for connects() + 1).
  std::size_t connects() const;
  void wait_connects(std::size_t at_least, std::chrono::milliseconds timeout = 20s) const;

  const ProbeOptions& options() const { return options_; }

 private:
  struct State;
  void connection_loop();
  std::string subscribe_all(const std::vector<std::string>& filters);
  void shutdown();
  std::optional<Message> find(std::string_view filter, const Match& match, std::size_t since,
                              std::chrono::milliseconds timeout) const;

  ProbeOptions options_;
  std::shared_ptr<State> state_;
  std::unique_ptr<mqtt::async_client> client_;
  std::thread worker_;
};

}  // namespace g2m::test
