#include "mqtt/mqtt_session.h"

#include <algorithm>

#include "common/backoff.h"

namespace g2m {

namespace {

// docs/mqtt-api.md "Topics the agent publishes": after losing the broker, try again 1 s later and
// every second for the first 10 s of the outage, then back off to at most 30 s between attempts.
constexpr Millis kFastRetry{1000};
constexpr Millis kFastPhase{10'000};
constexpr Millis kSlowFirst{2000};
constexpr Millis kSlowMax{30'000};
// A connection that lasted less than this did not end the outage.
constexpr Millis kStableConnection{10'000};
// Only when the client refused a message while nothing was in flight (so no acknowledgement
// will come to hand over the next one): its buffer was full, or the connection just dropped.
constexpr Millis kRefusedRetry{100};

std::size_t varint_size(std::size_t n) {
  std::size_t bytes = 1;
  while (n >= 128) {
    n /= 128;
    ++bytes;
  }
  return bytes;
}

// The bytes of the PUBLISH packet that carries `m` (MQTT 3.1.1 §3.3, MQTT 5 §3.3).
std::size_t packet_size(const OutgoingMessage& m, int version) {
  std::size_t remaining = 2 + m.topic.size() + (m.qos > 0 ? 2 : 0) + m.payload.size();
  if (version == 5) {
    std::size_t props = 0;
    if (m.expiry_seconds) props += 1 + 4;
    if (m.correlation_data) props += 1 + 2 + m.correlation_data->size();
    remaining += varint_size(props) + props;
  }
  return 1 + varint_size(remaining) + remaining;
}

}  // namespace

MqttSession::MqttSession(EventLoop& loop, MqttClient& client, Logger& log)
    : loop_(loop), client_(client), log_(log), reconnect_timer_(loop), retry_timer_(loop) {}

MqttSession::~MqttSession() {
  // The client outlives us: after detach() none of our handlers runs, and a task one of them
  // posted before finds alive_ false.
  *alive_ = false;
  client_.detach();
}

void MqttSession::start(std::function<void(MqttMessage)> on_message,
                        std::vector<std::string> filters) {
  on_message_ = std::move(on_message);
  filters_ = std::move(filters);
  // The handlers run on the client's threads: they touch nothing of ours but the loop (which
  // outlives the client) and shared state, and post the rest.
  EventLoop* loop = &loop_;
  const std::weak_ptr<bool> alive = alive_;
  auto post = [loop, alive](auto task) {
    loop->post([alive, task = std::move(task)]() mutable {
      if (const auto a = alive.lock(); a && *a) task();
    });
  };
  MqttClient::Handlers handlers;
  handlers.connected = [this, post](const ConnectionLimits& limits) {
    post([this, limits] { on_connected(limits); });
  };
  handlers.connection_lost = [this, post](const std::string& cause, int reason) {
    post([this, cause, reason] {
      on_lost(reason != 0 ? cause : "connection lost" + (cause.empty() ? "" : ": " + cause),
              reason);
    });
  };
  handlers.connect_failed = [this, post](const std::string& why) {
    post([this, why] { on_lost(why, 0); });
  };
  handlers.message = [this, post](MqttMessage m) {
    post([this, m = std::move(m)]() mutable {
      if (on_message_) on_message_(std::move(m));
    });
  };
  // Acknowledgements collect in the mailbox; the first of a batch posts one task that takes
  // them all. shutdown(), which blocks the loop thread, takes them from there itself.
  handlers.delivered = [this, post, mailbox = mailbox_](std::uint64_t id) {
    bool first = false;
    {
      const std::lock_guard<std::mutex> lock(mailbox->mutex);
      first = mailbox->delivered.empty();
      mailbox->delivered.push_back(id);
    }
    mailbox->ready.notify_all();
    if (first) post([this] { take_delivered(); });
  };
  client_.start(std::move(handlers));
}

void MqttSession::on_connected(const ConnectionLimits& limits) {
  if (stopping_) return;
  connected_ = true;
  connected_at_ = loop_.now();
  failed_attempts_ = 0;
  reconnect_timer_.cancel();
  window_ = std::max<std::size_t>(1, limits.receive_maximum);
  max_packet_ = limits.maximum_packet_size;
  log_.info("mqtt: connected");
  if (log_.enabled(LogLevel::debug)) {
    log_.debug("mqtt: the broker accepts ", window_, " unacknowledged messages",
               max_packet_ ? " and packets of at most " + std::to_string(*max_packet_) + " bytes"
                           : std::string());
  }
  // A clean session: subscriptions do not survive a reconnection (mqtt-facts §3.7).
  for (const auto& filter : filters_) client_.subscribe(filter, 1);
  if (connected_hook_) connected_hook_();
  in_flight_.clear();
  pending_retained_.clear();
  pending_set_.clear();
  for (const auto& topic : retained_order_) mark_pending(topic);
  report_drops();
  pump();
}

void MqttSession::on_lost(const std::string& why, int reason) {
  if (stopping_) return;
  const bool taken_over = reason == kReasonSessionTakenOver;
  const bool was_connected = connected_;
  if (was_connected) {
    // A connection the broker closes soon after accepting it does not end the outage: the
    // cadence goes on where it was, so two clients fighting over one client id (Mosquitto 2.0.11
    // closes the older connection without a DISCONNECT) back off instead of trading places
    // every second.
    if (loop_.now() - connected_at_ >= kStableConnection) {
      outage_since_.reset();
      backoff_step_ = 0;
      short_lived_ = 0;
    } else {
      ++short_lived_;
    }
  }
  const Millis delay = reconnect_delay(taken_over);
  const std::string in = std::to_string((delay.count() + 500) / 1000) + " s";
  if (was_connected) {
    if (taken_over) {
      log_.error("mqtt: another client connected with client id ", client_.client_id(),
                 " (the broker disconnected us, reason 142; give each client its own "
                 "mqtt.client_id); trying again in ",
                 in);
    } else if (short_lived_ >= 2) {
      log_.warn("mqtt: ", why, " again right after connecting (is another client using client id ",
                client_.client_id(),
                "? each client needs its own mqtt.client_id); trying again in ", in);
    } else {
      log_.warn("mqtt: ", why, "; reconnecting");
    }
  } else if (failed_attempts_ == 0 || log_.enabled(LogLevel::debug)) {
    log_.error("mqtt: ", why);
    if (failed_attempts_ == 0 && connect_failure_hook_) connect_failure_hook_(why);
  }
  // After a loss the failed attempts that follow are logged at debug level only.
  failed_attempts_ = was_connected ? 1 : failed_attempts_ + 1;
  connected_ = false;
  retry_timer_.cancel();
  // Events the connection took with it go out again after the reconnection (QoS 1: at least
  // once); retained values are all re-published then anyway.
  for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) {
    if (it->second) enqueue(std::move(*it->second), true);
  }
  in_flight_.clear();
  // A second report of the same loss (a DISCONNECT, then the closed socket) keeps the timer,
  // unless it says the session was taken over.
  if (reconnect_timer_.active() && !taken_over) return;
  reconnect_timer_.start_after(delay, [this] { client_.reconnect(); });
}

Millis MqttSession::reconnect_delay(bool taken_over) {
  if (reconnect_timer_.active() && !taken_over) {
    return std::chrono::duration_cast<Millis>(reconnect_timer_.deadline() - loop_.now());
  }
  const SteadyTime now = loop_.now();
  if (!outage_since_) outage_since_ = now;
  if (taken_over) {
    // Another client connected with our client id: reconnecting at once would only throw it
    // off again (and it us), every second.
    backoff_step_ = 8;  // and stay at the slow end while this outage lasts
    return kSlowMax;
  }
  if (now - *outage_since_ < kFastPhase) return kFastRetry;
  return backoff_delay(backoff_step_++, kSlowFirst, kSlowMax, 0.0);
}

OutgoingMessage MqttSession::retained_message(const std::string& topic,
                                              const Retained& value) const {
  OutgoingMessage m;
  m.topic = topic;
  m.payload = value.payload;
  m.retain = true;
  if (value.expires_at && !value.payload.empty()) {
    const auto left =
        std::chrono::duration_cast<Seconds>(*value.expires_at - loop_.clock().system());
    m.expiry_seconds = static_cast<std::uint32_t>(std::max<long long>(1, left.count()));
  }
  return m;
}

std::size_t MqttSession::max_payload_size() const {
  std::size_t limit = client_.max_message_size();
  if (max_packet_) {
    limit = std::min(limit, *max_packet_ > kPacketOverhead ? *max_packet_ - kPacketOverhead : 0);
  }
  return limit;
}

bool MqttSession::fits(const OutgoingMessage& m, bool log_refusal) const {
  const std::size_t max_message = client_.max_message_size();
  std::string why;
  if (m.payload.size() > max_message) {
    why = "mqtt.max_message_size is " + std::to_string(max_message) + " bytes";
  } else if (max_packet_ && packet_size(m, client_.version()) > *max_packet_) {
    why = "the broker accepts packets of at most " + std::to_string(*max_packet_) + " bytes";
  } else {
    return true;
  }
  if (log_refusal) {
    log_.warn("mqtt: not publishing ", m.payload.size(), " bytes to ", m.topic, ": ", why);
  }
  return false;
}

void MqttSession::mark_pending(const std::string& topic) {
  if (pending_set_.insert(topic).second) pending_retained_.push_back(topic);
}

namespace {
std::size_t queued_size(const OutgoingMessage& m) {
  return m.topic.size() + m.payload.size();
}
}  // namespace

void MqttSession::enqueue(OutgoingMessage message, bool front) {
  queued_bytes_ += queued_size(message);
  if (front) {
    queue_.push_front(std::move(message));
  } else {
    queue_.push_back(std::move(message));
  }
  if (!connected_) {
    while (queue_.size() > kMaxQueued) drop_oldest("the broker is unreachable");
  }
  while (queued_bytes_ > kMaxQueuedBytes && queue_.size() > 1) {
    drop_oldest("the broker is not taking them");
  }
}

void MqttSession::drop_oldest(const char* why) {
  queued_bytes_ -= queued_size(queue_.front());
  queue_.pop_front();
  ++dropped_;
  // One line at the first drop of a series; the count follows when the broker takes them again.
  if (dropped_unreported_++ == 0) {
    log_.warn("mqtt: ", queue_.size(), " events and replies wait and ", why,
              "; dropping the oldest");
  }
}

void MqttSession::report_drops() {
  if (dropped_unreported_ == 0) return;
  log_.warn("mqtt: ", dropped_unreported_,
            " events and replies were dropped before the broker "
            "could take them");
  dropped_unreported_ = 0;
}

void MqttSession::set_retained(const std::string& topic, std::string payload,
                               std::optional<SystemTime> expires_at) {
  Retained value{std::move(payload), expires_at};
  if (!fits(retained_message(topic, value), true)) return;  // the previous value stays
  auto it = retained_.find(topic);
  if (it == retained_.end()) {
    retained_order_.push_back(topic);
    it = retained_.emplace(topic, Retained{}).first;
  }
  it->second = std::move(value);
  if (connected_) {  // else all of them go out after the connection
    mark_pending(topic);
    pump();
  }
  if (retained_hook_) retained_hook_(topic, it->second.payload, expires_at);
}

void MqttSession::republish(const std::string& topic) {
  if (!connected_ || retained_.count(topic) == 0) return;
  mark_pending(topic);
  pump();
}

void MqttSession::send(OutgoingMessage message) {
  if (!fits(message, true)) return;
  enqueue(std::move(message), false);
  pump();
}

void MqttSession::take_delivered() {
  std::vector<std::uint64_t> done;
  {
    const std::lock_guard<std::mutex> lock(mailbox_->mutex);
    done.swap(mailbox_->delivered);
  }
  // An acknowledgement from an earlier connection finds nothing: that connection's bookkeeping
  // went with it.
  for (const auto id : done) in_flight_.erase(id);
  pump();
}

void MqttSession::pump() {
  while (connected_ && in_flight_.size() < window_) {
    OutgoingMessage m;
    const bool retained = !pending_retained_.empty();
    if (retained) {
      const auto it = retained_.find(pending_retained_.front());
      m = retained_message(it->first, it->second);
    } else if (!queue_.empty()) {
      m = queue_.front();
    } else {
      report_drops();
      return;
    }
    const auto consume = [&] {
      if (retained) {
        pending_set_.erase(pending_retained_.front());
        pending_retained_.pop_front();
      } else {
        queued_bytes_ -= queued_size(queue_.front());
        queue_.pop_front();
      }
    };
    if (!fits(m, true)) {  // the broker's limits changed since it was accepted
      consume();
      continue;
    }
    const std::uint64_t id = next_id_++;
    switch (client_.publish(m, id)) {
      case MqttClient::Publish::sent:
        if (m.qos > 0) {
          if (retained) {
            in_flight_.emplace(id, std::nullopt);
          } else {
            in_flight_.emplace(id, std::move(m));
          }
        }
        consume();
        break;
      case MqttClient::Publish::refused:
        log_.warn("mqtt: the client refused a message to ", m.topic, "; dropped");
        consume();
        break;
      case MqttClient::Publish::not_now:
        // An acknowledgement will hand it over; with nothing in flight none will come.
        if (in_flight_.empty() && !retry_timer_.active()) {
          retry_timer_.start_after(kRefusedRetry, [this] { pump(); });
        }
        return;
    }
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
  retry_timer_.cancel();
  // The loop thread is ours until we return, so acknowledgements are taken from the mailbox
  // here: hand over what is still waiting, as fast as the broker acknowledges it. A blocking
  // wait, so on the real clock.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (connected_) {
    pump();
    if (in_flight_.empty()) break;  // all handed over and acknowledged (or the client refuses)
    std::vector<std::uint64_t> done;
    {
      std::unique_lock<std::mutex> lock(mailbox_->mutex);
      if (!mailbox_->ready.wait_until(lock, deadline,
                                      [&] { return !mailbox_->delivered.empty(); })) {
        break;
      }
      done.swap(mailbox_->delivered);
    }
    for (const auto id : done) in_flight_.erase(id);
  }
  connected_ = false;  // nothing is handed over after this
  const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
  client_.stop(std::max(left, Millis(100)));
}

}  // namespace g2m
