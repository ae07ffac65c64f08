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
class PahoMqttClient final : public MqttClient {
 public:
  PahoMqttClient(const MqttConfig& config, Logger& log);
  ~PahoMqttClient() override;

  void start(Handlers handlers) override;
  void reconnect() override { connect_once(); }
  bool publish(const OutgoingMessage& message) override;
  void subscribe(const std::string& filter, int qos) override;
  void stop(Millis timeout) override;
  int version() const override { return config_.version; }

 private:
  void connect_once();

  class ConnectListener;

  MqttConfig config_;
  Logger& log_;
  std::unique_ptr<mqtt::async_client> client_;
  mqtt::connect_options connect_options_;  // kept alive: Paho 1.2.0 copies pointers from it
  std::unique_ptr<ConnectListener> listener_;
  Handlers handlers_;
};

}  // namespace g2m
