#include "mqtt/paho_client.h"

#include <algorithm>
#include <cstdint>

#include "http/proxy_environment.h"

namespace g2m {

namespace {
std::string server_uri(const MqttConfig& c) {
  // Paho C 1.3.12 knows these schemes; ports were made explicit by the config loader.
  const bool v6 = c.host.find(':') != std::string::npos;
  return c.scheme + "://" + (v6 ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port);
}

// Room in Paho's command queue: every publish MqttSession may hand over at once (at most
// kMaxInflight), plus subscriptions; Paho C fails a send with -12 beyond it.
constexpr int kMaxBuffered = PahoMqttClient::kMaxInflight + 1000;

void* id_context(std::uint64_t id) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
}
std::uint64_t context_id(void* context) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(context));
}
}  // namespace

// The owner's handlers, behind one lock: every callback from Paho's threads calls through it,
// and detach() empties it.
struct PahoMqttClient::Gate {
  std::mutex mutex;
  Handlers handlers;

  template <class F>
  void call(F&& f) {
    const std::lock_guard<std::mutex> lock(mutex);
    f(handlers);
  }
};

// Reports the outcome of one connect attempt. Runs on Paho's thread, which holds Paho's lock:
// only forwards (mqtt-facts §3.4).
class PahoMqttClient::ConnectListener final : public mqtt::iaction_listener {
 public:
  ConnectListener(std::shared_ptr<Gate> gate, const MqttConfig& config)
      : gate_(std::move(gate)), uri_(server_uri(config)), tls_(config.tls) {}

  void on_failure(const mqtt::token& tok) override {
    std::string why = "connection refused or unreachable";
    const int rc = tok.get_return_code();
    const int reason = static_cast<int>(tok.get_reason_code());
    // MQTT 3.1.1 CONNACK codes 4/5, MQTT 5 reason codes 0x86/0x87 (Paho may give either).
    if (reason == 0x86 || reason == 0x87 || rc == 4 || rc == 5 || rc == 0x86 || rc == 0x87) {
      why = "the broker refused the user name or password (not authorized)";
    } else if (rc == -1) {
      why = "no MQTT answer from " + uri_ +
            (tls_ ? " (unreachable, or the TLS connection failed)" : " (unreachable)");
    } else if (rc != 0) {
      why = "connect failed (code " + std::to_string(rc) + ")";
    }
    gate_->call([&](Handlers& h) {
      if (h.connect_failed) h.connect_failed(why);
    });
  }

  // The CONNACK: the connection's flow-control limits. Paho completes the token before it calls
  // here, so reading the response does not wait.
  void on_success(const mqtt::token& tok) override {
    ConnectionLimits limits;
    limits.receive_maximum = static_cast<std::size_t>(kMaxInflight);
    try {
      const auto response = tok.get_connect_response();
      const auto& props = response.get_properties();
      if (props.contains(mqtt::property::RECEIVE_MAXIMUM)) {
        const auto n = mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM);
        if (n > 0) limits.receive_maximum = std::min<std::size_t>(n, limits.receive_maximum);
      }
      if (props.contains(mqtt::property::MAXIMUM_PACKET_SIZE)) {
        const auto n = mqtt::get<uint32_t>(props, mqtt::property::MAXIMUM_PACKET_SIZE);
        if (n > 0) limits.maximum_packet_size = n;
      }
    } catch (const std::exception&) {
      // No response or no properties (MQTT 3.1.1): the defaults stand.
    }
    gate_->call([&](Handlers& h) {
      if (h.connected) h.connected(limits);
    });
  }

 private:
  std::shared_ptr<Gate> gate_;
  std::string uri_;
  bool tls_;
};

// One listener for every publish: the message's id travels as the token's user context.
class PahoMqttClient::DeliveryListener final : public mqtt::iaction_listener {
 public:
  explicit DeliveryListener(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  // A PUBACK with a failure reason (0x87 not authorized, ...) also frees the broker's window; it
  // comes with return code 0. A negative code is Paho's own: MQTTASYNC_OPERATION_INCOMPLETE for
  // a message a lost connection took with it (a clean session drops it, before Paho reports the
  // loss). That one was not delivered: MqttSession sends it again after the reconnection.
  void on_failure(const mqtt::token& tok) override {
    if (tok.get_return_code() >= 0) report(tok);
  }
  void on_success(const mqtt::token& tok) override { report(tok); }

 private:
  void report(const mqtt::token& tok) {
    const std::uint64_t id = context_id(tok.get_user_context());
    gate_->call([&](Handlers& h) {
      if (h.delivered) h.delivered(id);
    });
  }
  std::shared_ptr<Gate> gate_;
};

PahoMqttClient::PahoMqttClient(const MqttConfig& config, Logger& log)
    : config_(config), log_(log), gate_(std::make_shared<Gate>()) {
  // The broker connection never goes through a proxy the environment names (CONTRACT §6): take
  // Paho's proxy variables out of the environment before it can read them.
  take_proxy_environment();
  // Paho 1.2.0: MQTT 5 must be chosen when the client is created AND when it connects.
  const int version = config_.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  // Paho C counts in-flight publishes against maxBufferedMessages even while connected (default
  // 100). We never publish while disconnected (MqttSession keeps its own bounded queue and hands
  // over no more than the broker's window), so this only has to hold that window.
  client_ = std::make_unique<mqtt::async_client>(server_uri(config_), config_.client_id,
                                                 mqtt::create_options(version, kMaxBuffered));
  const std::string will_topic = config_.base_topic + "/bridge/state";
  mqtt::connect_options_builder builder;
  builder.mqtt_version(version)
      .keep_alive_interval(config_.keepalive)
      .connect_timeout(std::chrono::seconds(10))
      .max_inflight(kMaxInflight)
      .automatic_reconnect(false)  // MqttSession schedules reconnects (CONTRACT §1 cadence)
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
  connect_listener_ = std::make_unique<ConnectListener>(gate_, config_);
  delivery_listener_ = std::make_unique<DeliveryListener>(gate_);
}

PahoMqttClient::~PahoMqttClient() {
  detach();
  // MQTTAsync_destroy: a connect still in flight is abandoned and, the last client gone, Paho's
  // threads stop. Anything they still call reaches an empty gate and live listeners.
  client_.reset();
}

void PahoMqttClient::detach() {
  const std::lock_guard<std::mutex> lock(gate_->mutex);
  gate_->handlers = Handlers{};
}

void PahoMqttClient::start(Handlers handlers) {
  {
    const std::lock_guard<std::mutex> lock(gate_->mutex);
    gate_->handlers = std::move(handlers);
  }
  // Installed before the first connect and never changed (Paho 1.2.0 lock-order issue #481).
  // They hold the gate, not this object. A connection's success is reported by the connect
  // listener, which also has the CONNACK's limits.
  client_->set_connection_lost_handler([gate = gate_](const std::string& cause) {
    gate->call([&](Handlers& h) {
      if (h.connection_lost) h.connection_lost(cause, 0);
    });
  });
  // An MQTT 5 broker may end the session with a DISCONNECT packet (a protocol error, a session
  // takeover): Paho reports that here, not as a lost connection (it calls no connection-lost
  // handler after it, MQTTAsyncUtils.c nextOrClose).
  client_->set_disconnected_handler([gate = gate_](const mqtt::properties&, mqtt::ReasonCode code) {
    const int reason = static_cast<int>(code);
    const std::string why = "the broker disconnected us (reason " + std::to_string(reason) + ")";
    gate->call([&](Handlers& h) {
      if (h.connection_lost) h.connection_lost(why, reason);
    });
  });
  client_->set_message_callback([gate = gate_](mqtt::const_message_ptr msg) {
    if (!msg) return;
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
    gate->call([&](Handlers& h) {
      if (h.message) h.message(std::move(m));
    });
  });
  connect_once();
}

void PahoMqttClient::connect_once() {
  try {
    client_->connect(connect_options_, nullptr, *connect_listener_);
  } catch (const mqtt::exception& e) {
    const std::string why = e.what();
    gate_->call([&](Handlers& h) {
      if (h.connect_failed) h.connect_failed(why);
    });
  }
}

MqttClient::Publish PahoMqttClient::publish(const OutgoingMessage& out, std::uint64_t id) {
  try {
    if (!client_->is_connected()) return Publish::not_now;
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
    client_->publish(builder.finalize(), id_context(id), *delivery_listener_);
    return Publish::sent;
  } catch (const mqtt::exception& e) {
    const int rc = e.get_return_code();
    log_.debug("mqtt: publish to ", out.topic, " not sent: ", e.what());
    switch (rc) {
      case MQTTASYNC_DISCONNECTED:
      case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
      case MQTTASYNC_NO_MORE_MSGIDS:
      case MQTTASYNC_MAX_BUFFERED_MESSAGES:
      case MQTTASYNC_MAX_BUFFERED:
      case MQTTASYNC_FAILURE:
        return Publish::not_now;
      default:
        return Publish::refused;  // a malformed message (bad UTF-8 topic, ...): never sendable
    }
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
