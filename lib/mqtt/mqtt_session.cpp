#include "mqtt/mqtt_session.h"

namespace g2m {

MqttSession::MqttSession(EventLoop& loop, MqttClient& client, Logger& log)
    : loop_(loop), client_(client), log_(log), reconnect_timer_(loop), flush_timer_(loop) {}

void MqttSession::start(std::function<void(MqttMessage)> on_message,
                        std::vector<std::string> filters) {
  on_message_ = std::move(on_message);
  filters_ = std::move(filters);
  MqttClient::Handlers handlers;
  handlers.connected = [this] { loop_.post([this] { on_connected(); }); };
  handlers.connection_lost = [this](const std::string& cause) {
    loop_.post([this, cause] { on_lost("connection lost" + (cause.empty() ? "" : ": " + cause)); });
  };
  handlers.connect_failed = [this](const std::string& why) {
    loop_.post([this, why] { on_lost(why); });
  };
  handlers.message = [this](MqttMessage m) {
    loop_.post([this, m = std::move(m)]() mutable {
      if (on_message_) on_message_(std::move(m));
    });
  };
  client_.start(std::move(handlers));
}

void MqttSession::on_connected() {
  if (stopping_) return;
  connected_ = true;
  reconnect_attempt_ = 0;
  log_.info("mqtt: connected");
  // A clean session: subscriptions do not survive a reconnection (mqtt-facts §3.7).
  for (const auto& filter : filters_) client_.subscribe(filter, 1);
  if (connected_hook_) connected_hook_();
  dirty_.clear();
  for (const auto& topic : retained_order_) dirty_.insert(topic);
  flush();
}

void MqttSession::on_lost(const std::string& why) {
  if (stopping_) return;
  if (connected_) {
    log_.warn("mqtt: ", why, "; reconnecting");
  } else if (reconnect_attempt_ == 0 || log_.enabled(LogLevel::debug)) {
    log_.error("mqtt: ", why);
    if (reconnect_attempt_ == 0 && connect_failure_hook_) connect_failure_hook_(why);
  }
  connected_ = false;
  schedule_reconnect();
}

void MqttSession::schedule_reconnect() {
  if (reconnect_timer_.active()) return;
  // CONTRACT §1: try again 1 s later, backing off to at most 30 s between attempts.
  const Millis delay = backoff_delay(reconnect_attempt_++, Millis(1000), Millis(30'000), 0.0);
  reconnect_timer_.start_after(delay, [this] { client_.reconnect(); });
}

bool MqttSession::publish_retained(const std::string& topic, const Retained& value) {
  OutgoingMessage m;
  m.topic = topic;
  m.payload = value.payload;
  m.retain = true;
  if (value.expires_at && !value.payload.empty()) {
    const auto left =
        std::chrono::duration_cast<Seconds>(*value.expires_at - loop_.clock().system());
    m.expiry_seconds = static_cast<std::uint32_t>(std::max<long long>(1, left.count()));
  }
  return client_.publish(m);
}

void MqttSession::set_retained(const std::string& topic, std::string payload,
                               std::optional<SystemTime> expires_at) {
  auto it = retained_.find(topic);
  if (it == retained_.end()) {
    retained_order_.push_back(topic);
    it = retained_.emplace(topic, Retained{}).first;
  }
  it->second = Retained{std::move(payload), expires_at};
  if (connected_ && !publish_retained(topic, it->second)) {
    dirty_.insert(topic);
    if (!flush_timer_.active()) flush_timer_.start_after(Millis(100), [this] { flush(); });
  }
  if (retained_hook_) retained_hook_(topic, it->second.payload, expires_at);
}

void MqttSession::republish(const std::string& topic) {
  const auto it = retained_.find(topic);
  if (it != retained_.end() && connected_) publish_retained(topic, it->second);
}

void MqttSession::send(OutgoingMessage message) {
  if (connected_ && queue_.empty() && client_.publish(message)) return;
  if (queue_.size() >= kMaxQueued) {
    queue_.pop_front();  // oldest dropped first
    ++dropped_;
  }
  queue_.push_back(std::move(message));
  // Connected but the client refused it (its buffer is full): try again shortly rather than
  // waiting for a reconnection that may never come.
  if (connected_ && !flush_timer_.active()) {
    flush_timer_.start_after(Millis(100), [this] { flush(); });
  }
}

void MqttSession::flush() {
  // Retained values first (in the order they were first set: bridge/state leads), then events.
  for (const auto& topic : retained_order_) {
    if (!connected_ || dirty_.count(topic) == 0) continue;
    if (!publish_retained(topic, retained_.at(topic))) {
      flush_timer_.start_after(Millis(100), [this] { flush(); });
      return;
    }
    dirty_.erase(topic);
  }
  while (connected_ && !queue_.empty()) {
    if (!client_.publish(queue_.front())) {
      flush_timer_.start_after(Millis(100), [this] { flush(); });
      return;
    }
    queue_.pop_front();
  }
}

const std::string* MqttSession::retained_value(const std::string& topic) const {
  const auto it = retained_.find(topic);
  return it == retained_.end() ? nullptr : &it->second.payload;
}

void MqttSession::shutdown(const std::string& state_topic, Millis timeout) {
  set_retained(state_topic, R"({"state":"offline"})");
  stopping_ = true;
  reconnect_timer_.cancel();
  client_.stop(timeout);
}

}  // namespace g2m
