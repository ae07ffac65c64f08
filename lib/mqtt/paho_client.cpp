#include "mqtt/paho_client.h"

namespace g2m {

namespace {
std::string server_uri(const MqttConfig& c) {
  // Paho C 1.3.12 knows these schemes; ports were made explicit by the config loader.
  const bool v6 = c.host.find(':') != std::string::npos;
  return c.scheme + "://" + (v6 ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port);
}
}  // namespace

// Reports the outcome of one connect attempt. Runs on Paho's thread: only forwards.
class PahoMqttClient::ConnectListener final : public mqtt::iaction_listener {
 public:
  explicit ConnectListener(PahoMqttClient& owner) : owner_(owner) {}
  void on_failure(const mqtt::token& tok) override {
    std::string why = "connection refused or unreachable";
    const int rc = tok.get_return_code();
    const int reason = static_cast<int>(tok.get_reason_code());
    // MQTT 3.1.1 CONNACK codes 4/5, MQTT 5 reason codes 0x86/0x87 (Paho may give either).
    if (reason == 0x86 || reason == 0x87 || rc == 4 || rc == 5 || rc == 0x86 || rc == 0x87) {
      why = "the broker refused the user name or password (not authorized)";
    } else if (rc == -1) {
      why =
          "no MQTT answer from " + server_uri(owner_.config_) +
          (owner_.config_.tls ? " (unreachable, or the TLS connection failed)" : " (unreachable)");
    } else if (rc != 0) {
      why = "connect failed (code " + std::to_string(rc) + ")";
    }
    if (owner_.handlers_.connect_failed) owner_.handlers_.connect_failed(why);
  }
  void on_success(const mqtt::token&) override {}

 private:
  PahoMqttClient& owner_;
};

PahoMqttClient::PahoMqttClient(const MqttConfig& config, Logger& log) : config_(config), log_(log) {
  // Paho 1.2.0: MQTT 5 must be chosen when the client is created AND when it connects.
  const int version = config_.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  // Paho C counts in-flight publishes against maxBufferedMessages even while connected (default
  // 100): a burst of events from 1,000 accounts must not fail with -12. We never publish while
  // disconnected (MqttSession keeps its own bounded queue), so this buffer only absorbs bursts.
  client_ = std::make_unique<mqtt::async_client>(server_uri(config_), config_.client_id,
                                                 mqtt::create_options(version, 20000));
  const std::string will_topic = config_.base_topic + "/bridge/state";
  mqtt::connect_options_builder builder;
  builder.mqtt_version(version)
      .keep_alive_interval(config_.keepalive)
      .connect_timeout(std::chrono::seconds(10))
      .automatic_reconnect(false)  // the loop schedules reconnects with its own backoff
      .will(mqtt::message(will_topic, std::string(R"({"state":"offline"})"), 1, true));
  // After mqtt_version(): the setter resets the session flag of the other protocol version.
  if (version == MQTTVERSION_5)
    builder.clean_start(true);
  else
    builder.clean_session(true);
  if (config_.username) builder.user_name(*config_.username);
  if (config_.password) builder.password(config_.password->reveal());
  if (config_.tls) {
    mqtt::ssl_options_builder ssl;
    ssl.enable_server_cert_auth(true).verify(true);
    if (config_.ca) ssl.trust_store(config_.ca->string());
    if (config_.cert) ssl.key_store(config_.cert->string());
    if (config_.key) ssl.private_key(config_.key->string());
    builder.ssl(ssl.finalize());
  }
  connect_options_ = builder.finalize();
  listener_ = std::make_unique<ConnectListener>(*this);
}

PahoMqttClient::~PahoMqttClient() {
  try {
    client_->disable_callbacks();
  } catch (...) {
  }
}

void PahoMqttClient::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  // Installed before the first connect and never changed (Paho 1.2.0 lock-order issue #481).
  client_->set_connected_handler([this](const std::string&) {
    if (handlers_.connected) handlers_.connected();
  });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    if (handlers_.connection_lost) handlers_.connection_lost(cause);
  });
  // An MQTT 5 broker may end the session with a DISCONNECT packet (a protocol error, a session
  // takeover): Paho reports that here, not as a lost connection.
  client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode reason) {
    if (handlers_.connection_lost) {
      handlers_.connection_lost("the broker disconnected us (reason " +
                                std::to_string(static_cast<int>(reason)) + ")");
    }
  });
  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    if (!msg || !handlers_.message) return;
    MqttMessage m;
    m.topic = msg->get_topic();
    m.payload = msg->get_payload_str();
    m.retained = msg->is_retained();
    const auto& props = msg->get_properties();
    if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
      m.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    }
    if (props.contains(mqtt::property::CORRELATION_DATA)) {
      m.correlation_data = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
    }
    handlers_.message(std::move(m));
  });
  connect_once();
}

void PahoMqttClient::connect_once() {
  try {
    client_->connect(connect_options_, nullptr, *listener_);
  } catch (const mqtt::exception& e) {
    if (handlers_.connect_failed) handlers_.connect_failed(e.what());
  }
}

bool PahoMqttClient::publish(const OutgoingMessage& out) {
  try {
    if (!client_->is_connected()) return false;
    auto builder = mqtt::message_ptr_builder();
    builder.topic(out.topic).payload(out.payload).qos(out.qos).retained(out.retain);
    if (config_.version == 5 && (out.expiry_seconds || out.correlation_data)) {
      mqtt::properties props;
      if (out.expiry_seconds) {
        props.add(
            {mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int32_t>(*out.expiry_seconds)});
      }
      if (out.correlation_data)
        props.add({mqtt::property::CORRELATION_DATA, *out.correlation_data});
      builder.properties(props);
    }
    client_->publish(builder.finalize());
    return true;
  } catch (const mqtt::exception& e) {
    log_.debug("mqtt: publish to ", out.topic, " not sent: ", e.what());
    return false;
  }
}

void PahoMqttClient::subscribe(const std::string& filter, int qos) {
  try {
    if (config_.version == 5) {
      // Retain-as-published: a request published retained while we are connected still arrives
      // flagged as retained, so it is refused too (it would run again at every reconnection).
      client_->subscribe(filter, qos, mqtt::subscribe_options(false, true));
    } else {
      client_->subscribe(filter, qos);
    }
  } catch (const mqtt::exception& e) {
    log_.warn("mqtt: cannot subscribe to ", filter, ": ", e.what());
  }
}

void PahoMqttClient::stop(Millis timeout) {
  try {
    if (client_->is_connected()) {
      client_->disconnect(static_cast<int>(timeout.count()))->wait_for(timeout);
    }
  } catch (const mqtt::exception& e) {
    log_.debug("mqtt: disconnect: ", e.what());
  }
}

}  // namespace g2m
