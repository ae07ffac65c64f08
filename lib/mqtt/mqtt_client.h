#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"

namespace g2m {

struct MqttMessage {
  std::string topic;
  std::string payload;
  bool retained = false;
  std::optional<std::string> response_topic;    // MQTT 5
  std::optional<std::string> correlation_data;  // MQTT 5, binary
};

struct OutgoingMessage {
  std::string topic;
  std::string payload;
  bool retain = false;
  int qos = 1;
  std::optional<std::uint32_t> expiry_seconds;  // MQTT 5 message-expiry interval
  std::optional<std::string> correlation_data;  // MQTT 5
};

// What the broker allows on one connection (its CONNACK), for the sender's flow control.
struct ConnectionLimits {
  // Unacknowledged QoS 1/2 publishes the broker accepts at once (MQTT 5 Receive Maximum; 65,535
  // when the CONNACK has none; under MQTT 3.1.1 the client library's own in-flight limit).
  std::size_t receive_maximum = 65535;
  // The largest packet the broker accepts (MQTT 5 Maximum Packet Size); nullopt: no limit.
  std::optional<std::size_t> maximum_packet_size;
};

// MQTT 5 DISCONNECT reason 0x8E: another client connected with the same client id.
inline constexpr int kReasonSessionTakenOver = 142;

// The narrow port to the broker. Handlers run on the client library's threads: they must only
// hand the event to the loop.
class MqttClient {
 public:
  struct Handlers {
    std::function<void(const ConnectionLimits&)> connected;
    // `reason` is the MQTT 5 DISCONNECT reason code when the broker ended the connection with
    // one (kReasonSessionTakenOver, ...), else 0.
    std::function<void(const std::string& cause, int reason)> connection_lost;
    std::function<void(const std::string& why)> connect_failed;
    std::function<void(MqttMessage)> message;
    // A message handed over by publish(id) is done: acknowledged by the broker (QoS 1/2, also a
    // refusal with a reason code) or written (QoS 0). Not called for messages a lost connection
    // took with it.
    std::function<void(std::uint64_t id)> delivered;
  };
  enum class Publish {
    sent,     // handed over; `delivered(id)` follows
    not_now,  // not connected, or the library's buffer is full: try again later
    refused,  // this message can never be sent (the library rejects it): drop it
  };

  virtual ~MqttClient() = default;
  // Installs the handlers and starts the first connect attempt in the background. Its outcome
  // arrives as connected or connect_failed; the owner decides when to try again.
  virtual void start(Handlers handlers) = 0;
  // Removes the handlers: when it returns, no handler is running and none will run again. The
  // owner of the handlers calls it before it goes away.
  virtual void detach() = 0;
  // Starts another connect attempt (after connect_failed or connection_lost).
  virtual void reconnect() = 0;
  // Non-blocking.
  virtual Publish publish(const OutgoingMessage& message, std::uint64_t id) = 0;
  virtual void subscribe(const std::string& filter, int qos) = 0;
  // Clean disconnect, waiting at most `timeout` for outstanding messages.
  virtual void stop(Millis timeout) = 0;
  virtual int version() const = 0;
  // mqtt.max_message_size: no payload larger than this is ever published.
  virtual std::size_t max_message_size() const = 0;
  virtual std::string client_id() const = 0;
};

}  // namespace g2m
