#pragma once

#include <mqtt/async_client.h>

#include <memory>
#include <mutex>

#include "common/logger.h"
#include "config/config.h"
#include "mqtt/mqtt_client.h"

namespace g2m {

// MqttClient on Eclipse Paho MQTT C++ 1.2.0 (see shared/reference/mqtt-facts.md §3 for the
// pitfalls this works around: v5 must be chosen at creation and at connect; handlers are
// installed before connect and never changed; nothing blocks inside a callback).
//
// Lifetime: Paho calls back on its own threads, into handlers that belong to the owner (the
// MqttSession). Every callback goes through one Gate, shared with the lambdas and listeners
// Paho holds: detach() (the session's destructor) empties it under its lock, so no handler of
// a dead owner ever runs; the destructor detaches and then destroys the Paho client first (its
// threads stop), before the listeners it might still call.
class PahoMqttClient final : public MqttClient {
 public:
  // Paho's own limit on unacknowledged messages (its default); under MQTT 5 it lowers it to the
  // broker's Receive Maximum, and so does MqttSession.
  static constexpr int kMaxInflight = 65535;

  PahoMqttClient(const MqttConfig& config, Logger& log);
  ~PahoMqttClient() override;
  PahoMqttClient(const PahoMqttClient&) = delete;
  PahoMqttClient& operator=(const PahoMqttClient&) = delete;

  void start(Handlers handlers) override;
  void detach() override;
  void reconnect() override { connect_once(); }
  Publish publish(const OutgoingMessage& message, std::uint64_t id) override;
  void subscribe(const std::string& filter, int qos) override;
  void stop(Millis timeout) override;
  int version() const override { return config_.version; }
  std::size_t max_message_size() const override { return config_.max_message_size; }
  std::string client_id() const override { return config_.client_id; }

 private:
  struct Gate;
  class ConnectListener;
  class DeliveryListener;

  void connect_once();

  MqttConfig config_;
  Logger& log_;
  std::shared_ptr<Gate> gate_;
  mqtt::connect_options connect_options_;  // kept alive: Paho 1.2.0 copies pointers from it
  std::unique_ptr<ConnectListener> connect_listener_;
  std::unique_ptr<DeliveryListener> delivery_listener_;
  // Last: destroyed first (the destructor also does it explicitly), while the listeners and
  // the gate it may call into still exist.
  std::unique_ptr<mqtt::async_client> client_;
};

}  // namespace g2m
