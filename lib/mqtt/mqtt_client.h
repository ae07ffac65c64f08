#pragma once

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

// The narrow port to the broker. Handlers run on the client library's threads: they must only
// hand the event to the loop.
class MqttClient {
 public:
  struct Handlers {
    std::function<void()> connected;
    std::function<void(const std::string& cause)> connection_lost;
    std::function<void(const std::string& why)> connect_failed;
    std::function<void(MqttMessage)> message;
  };
  virtual ~MqttClient() = default;
  // Installs the handlers and starts the first connect attempt in the background. Its outcome
  // arrives as connected or connect_failed; the owner decides when to try again.
  virtual void start(Handlers handlers) = 0;
  // Starts another connect attempt (after connect_failed or connection_lost).
  virtual void reconnect() = 0;
  // Non-blocking. False when the message could not be handed to the client (not connected).
  virtual bool publish(const OutgoingMessage& message) = 0;
  virtual void subscribe(const std::string& filter, int qos) = 0;
  // Clean disconnect, waiting at most `timeout` for outstanding messages.
  virtual void stop(Millis timeout) = 0;
  virtual int version() const = 0;
};

}  // namespace g2m
