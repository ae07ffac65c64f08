#include "harness_mqtt.h"

#include <algorithm>
#include <sstream>

#include <mqtt/async_client.h>

#include "harness_mosquitto.h"

namespace g2m::test {

// Shared with the Paho callbacks, which only lock, record and notify (never block).
struct MqttProbe::State {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Message> messages;
  std::vector<std::string> filters;
  std::size_t connect_events = 0;  // connected-handler calls, each one needs a (re)subscribe
  std::size_t lost_events = 0;     // connection losses, each one needs a reconnection
  std::size_t connects = 0;        // (re)connections with their subscriptions in place
  bool connected = false;
  bool stopping = false;
  std::string last_error;
};

namespace {

bool uses_tls(const std::string& url) {
  return url.starts_with("mqtts://") || url.starts_with("ssl://") || url.starts_with("wss://");
}

std::unique_ptr<mqtt::async_client> make_client(const ProbeOptions& options,
                                                const std::string& client_id) {
  // Paho 1.2.0 needs MQTT 5 chosen at creation time *and* in the connect options.
  const mqtt::create_options create(options.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1);
  return std::make_unique<mqtt::async_client>(options.url, client_id, create, nullptr);
}

mqtt::connect_options connect_options_for(const ProbeOptions& options) {
  mqtt::connect_options_builder builder;
  // mqtt_version() first: it resets the clean flag of the other protocol version.
  if (options.version == 5) {
    builder.mqtt_version(MQTTVERSION_5).clean_start(true);
  } else {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(true);
  }
  builder.keep_alive_interval(30s).connect_timeout(5s);
  if (!options.username.empty()) builder.user_name(options.username);
  if (!options.password.empty()) builder.password(options.password);
  if (uses_tls(options.url)) {
    mqtt::ssl_options_builder ssl;
    ssl.enable_server_cert_auth(true);
    if (!options.ca.empty()) ssl.trust_store(options.ca.string());
    if (!options.cert.empty()) ssl.key_store(options.cert.string());
    if (!options.key.empty()) ssl.private_key(options.key.string());
    builder.ssl(ssl.finalize());
  }
  return builder.finalize();
}

Message to_message(const mqtt::const_message_ptr& msg) {
  Message m;
  m.topic = msg->get_topic();
  m.payload = msg->get_payload_str();
  m.retained = msg->is_retained();
  m.qos = msg->get_qos();
  const mqtt::properties& props = msg->get_properties();
  if (props.contains(mqtt::property::MESSAGE_EXPIRY_INTERVAL)) {
    m.message_expiry = mqtt::get<int32_t>(props, mqtt::property::MESSAGE_EXPIRY_INTERVAL);
  }
  if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
    m.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
  }
  if (props.contains(mqtt::property::CORRELATION_DATA)) {
    m.correlation_data = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
  }
  m.arrived = SteadyClock::now();
  return m;
}

std::vector<std::string_view> levels(std::string_view topic) {
  std::vector<std::string_view> result;
  for (;;) {
    const auto slash = topic.find('/');
    result.push_back(topic.substr(0, slash));
    if (slash == std::string_view::npos) return result;
    topic.remove_prefix(slash + 1);
  }
}

bool has_wildcard(std::string_view topic) {
  return topic.find_first_of("+#") != std::string_view::npos;
}

std::string millis(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

// Paho C runs one I/O thread for all the clients of a process, and it adds a socket that is
// still connecting to its poll set only when the current wait (up to 1 s) ends: with another
// client connected and idle, every new connection costs about 2 s. A QoS 1 publish by a connected
// client brings a PUBACK back on its socket (even when an ACL denies the publish), which ends the
// wait at once. So while one client connects, the others are nudged. The topic is never recorded.
const char* const kWakeTopic = "g2m-test/wake";

class Wakers {
 public:
  void add(mqtt::async_client* client) {
    const std::lock_guard lock(mutex_);
    clients_.push_back(client);
  }
  void remove(mqtt::async_client* client) {
    const std::lock_guard lock(mutex_);
    std::erase(clients_, client);
  }
  void nudge_all_but(const mqtt::async_client* connecting) {
    const std::lock_guard lock(mutex_);
    for (auto* client : clients_) {
      if (client == connecting) continue;
      try {
        client->publish(kWakeTopic, "", 0, 1, false);
      } catch (const mqtt::exception&) {
        // not connected: it is not holding up the I/O thread either
      }
    }
  }

 private:
  std::mutex mutex_;
  std::vector<mqtt::async_client*> clients_;
};

Wakers& wakers() {
  static Wakers instance;
  return instance;
}

// Connects `client`: "" on success, else the error. A bare transport error (return code -1) is
// tried once more: right after another client's failed TLS connection, Paho C 1.3.11 sometimes
// fails the next connection with "socket error" before it has even started the handshake.
std::string connect_client(mqtt::async_client& client, const mqtt::connect_options& options,
                           std::chrono::milliseconds timeout) {
  std::string error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      const auto deadline = SteadyClock::now() + timeout;
      const mqtt::token_ptr token = client.connect(options);
      while (!token->wait_for(50ms)) {
        if (SteadyClock::now() >= deadline) return "no answer within " + millis(timeout);
        wakers().nudge_all_but(&client);
      }
      return "";
    } catch (const mqtt::exception& e) {
      // A refused CONNACK puts the MQTT reason code in the return code.
      const int code = e.get_return_code() > 0 ? e.get_return_code() : e.get_reason_code();
      error = std::string(e.what()) +
              (code > 0 ? ": " + mqtt::exception::reason_code_str(code) : "") + " (return code " +
              std::to_string(e.get_return_code()) + ")";
      if (e.get_return_code() != MQTTASYNC_FAILURE) break;
    }
  }
  return error;
}

}  // namespace

rapidjson::Document Message::json() const {
  return parse_json(payload);
}

std::string Message::describe() const {
  std::ostringstream out;
  out << '#' << index << ' ' << topic << " [qos" << qos << (retained ? " retained" : "");
  if (message_expiry) out << " expiry=" << *message_expiry;
  if (response_topic) out << " response_topic=" << *response_topic;
  if (correlation_data) out << " correlation=" << *correlation_data;
  out << "] ";
  if (payload.empty()) {
    out << "(empty)";
  } else if (payload.size() > 400) {
    out << payload.substr(0, 400) << "... (" << payload.size() << " bytes)";
  } else {
    out << payload;
  }
  return out.str();
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  const auto f = levels(filter);
  const auto t = levels(topic);
  // Wildcards at the first level never match $SYS-like topics (MQTT 4.7.2).
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

std::optional<std::string> try_connect(const ProbeOptions& options) {
  auto client =
      make_client(options, options.client_id.empty() ? unique_id("g2m-try") : options.client_id);
  const std::string error = connect_client(*client, connect_options_for(options), options.timeout);
  if (!error.empty()) return error;
  try {
    client->disconnect()->wait_for(2s);
  } catch (const mqtt::exception&) {
    // connecting is all this wanted to know
  }
  return std::nullopt;
}

MqttProbe::MqttProbe(const Mosquitto& broker, std::string base_topic)
    : MqttProbe(ProbeOptions{.url = broker.url(), .base_topic = std::move(base_topic)}) {}

MqttProbe::MqttProbe(ProbeOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>()) {
  if (options_.client_id.empty()) options_.client_id = unique_id("g2m-probe");
  state_->filters = options_.filters;
  client_ = make_client(options_, options_.client_id);
  std::shared_ptr<State> state = state_;
  client_->set_message_callback([state](mqtt::const_message_ptr msg) {
    if (!msg || msg->get_topic() == kWakeTopic) return;
    Message m = to_message(msg);
    const std::lock_guard lock(state->mutex);
    m.index = state->messages.size();
    state->messages.push_back(std::move(m));
    state->cv.notify_all();
  });
  client_->set_connected_handler([state](const std::string&) {
    const std::lock_guard lock(state->mutex);
    ++state->connect_events;
    state->cv.notify_all();
  });
  client_->set_connection_lost_handler([state](const std::string& cause) {
    const std::lock_guard lock(state->mutex);
    state->connected = false;
    ++state->lost_events;
    state->last_error = "connection lost: " + cause;
    state->cv.notify_all();
  });
  client_->set_disconnected_handler([state](const mqtt::properties&, mqtt::ReasonCode reason) {
    const std::lock_guard lock(state->mutex);
    state->connected = false;
    ++state->lost_events;
    state->last_error = "disconnected by the broker, reason code " + std::to_string(reason);
    state->cv.notify_all();
  });
  worker_ = std::thread([this] { connection_loop(); });

  try {
    const std::string error =
        connect_client(*client_, connect_options_for(options_), options_.timeout);
    if (!error.empty()) fail("MqttProbe: cannot connect to " + options_.url + ": " + error);
    wait_connects(1, options_.timeout);
    wakers().add(client_.get());
  } catch (...) {
    shutdown();  // the destructor does not run for a constructor that throws
    throw;
  }
}

MqttProbe::~MqttProbe() {
  shutdown();
}

void MqttProbe::shutdown() {
  {
    const std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (worker_.joinable()) worker_.join();
  if (client_) {
    wakers().remove(client_.get());
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(2s);
    } catch (const mqtt::exception&) {
      // already gone: nothing to tidy up
    }
    client_.reset();
  }
}

// Runs on the probe's own thread, because subscribing and connecting wait for the broker, which
// a Paho callback must never do. The probe reconnects by itself rather than with Paho's automatic
// reconnect, whose back-off (at least 1 s, then Paho's own polling) makes a broker restart cost
// the tests about 4 s.
void MqttProbe::connection_loop() {
  std::unique_lock lock(state_->mutex);
  std::size_t connects_handled = 0;
  std::size_t losses_handled = 0;
  for (;;) {
    state_->cv.wait(lock, [&] {
      return state_->stopping || state_->connect_events > connects_handled ||
             state_->lost_events > losses_handled;
    });
    if (state_->stopping) return;
    if (state_->connect_events > connects_handled) {
      connects_handled = state_->connect_events;
      const std::vector<std::string> filters = state_->filters;
      lock.unlock();
      const std::string error = subscribe_all(filters);
      lock.lock();
      if (!error.empty()) {
        state_->last_error = error;
      } else if (connects_handled == state_->connect_events) {
        ++state_->connects;
        state_->connected = true;
      }
      state_->cv.notify_all();
      continue;
    }
    losses_handled = state_->lost_events;
    // Try again every 100 ms until connected (the connected handler then asks for the
    // subscriptions) or until the probe is destroyed.
    while (!state_->stopping && state_->connect_events == connects_handled) {
      lock.unlock();
      bool connected = client_->is_connected();
      if (!connected) {
        connected = connect_client(*client_, connect_options_for(options_), 5s).empty();
      }
      lock.lock();
      if (connected) break;
      state_->cv.wait_for(lock, 100ms, [&] { return state_->stopping; });
    }
  }
}

std::string MqttProbe::subscribe_all(const std::vector<std::string>& filters) {
  for (const auto& filter : filters) {
    try {
      if (!client_->subscribe(filter, 1)->wait_for(5s)) return "no SUBACK for " + filter;
    } catch (const mqtt::exception& e) {
      return "subscribing to " + filter + ": " + e.what();
    }
  }
  return "";
}

std::size_t MqttProbe::mark() const {
  const std::lock_guard lock(state_->mutex);
  return state_->messages.size();
}

std::optional<Message> MqttProbe::find(std::string_view filter, const Match& match,
                                       std::size_t since, std::chrono::milliseconds timeout) const {
  const auto deadline = SteadyClock::now() + timeout;
  std::size_t next = since;
  std::unique_lock lock(state_->mutex);
  for (;;) {
    std::vector<Message> fresh;
    for (; next < state_->messages.size(); ++next) {
      if (topic_matches(filter, state_->messages[next].topic)) {
        fresh.push_back(state_->messages[next]);
      }
    }
    // The predicate runs unlocked: it may call back into the probe.
    lock.unlock();
    for (auto& m : fresh) {
      if (!match || match(m)) return std::move(m);
    }
    lock.lock();
    if (!state_->cv.wait_until(lock, deadline, [&] { return state_->messages.size() > next; })) {
      return std::nullopt;
    }
  }
}

Message MqttProbe::wait_for(std::string_view filter, const Match& match,
                            std::chrono::milliseconds timeout, std::size_t since) {
  auto found = find(filter, match, since, timeout);
  if (!found) {
    fail("MqttProbe: no matching message on '" + std::string(filter) + "' (from #" +
         std::to_string(since) + ") within " + millis(timeout) + "; the last messages:\n" + dump());
  }
  return std::move(*found);
}

Message MqttProbe::wait_for_json(std::string_view filter, const JsonMatch& match,
                                 std::chrono::milliseconds timeout, std::size_t since) {
  return wait_for(
      filter,
      [&](const Message& m) {
        const auto json = try_parse_json(m.payload);
        return !json.HasParseError() && (!match || match(json));
      },
      timeout, since);
}

std::vector<Message> MqttProbe::messages(std::string_view filter) const {
  const std::lock_guard lock(state_->mutex);
  std::vector<Message> result;
  for (const auto& m : state_->messages) {
    if (topic_matches(filter, m.topic)) result.push_back(m);
  }
  return result;
}

std::optional<Message> MqttProbe::last(std::string_view filter) const {
  const std::lock_guard lock(state_->mutex);
  for (auto it = state_->messages.rbegin(); it != state_->messages.rend(); ++it) {
    if (topic_matches(filter, it->topic)) return *it;
  }
  return std::nullopt;
}

std::string MqttProbe::dump(std::size_t count) const {
  const std::lock_guard lock(state_->mutex);
  const auto& all = state_->messages;
  std::string out;
  for (std::size_t i = all.size() > count ? all.size() - count : 0; i < all.size(); ++i) {
    out += "  " + all[i].describe() + "\n";
  }
  if (all.empty()) out = "  (none)\n";
  out += "  connected: " + std::string(state_->connected ? "yes" : "no");
  if (!state_->last_error.empty()) out += "; last error: " + state_->last_error;
  return out;
}

std::vector<Message> MqttProbe::fetch_retained(const std::string& filter,
                                               std::chrono::milliseconds timeout) const {
  const std::string marker = "g2m-test/marker/" + unique_id("m");
  ProbeOptions options = options_;
  options.client_id.clear();
  options.filters = {filter};
  if (!topic_matches(filter, marker)) options.filters.push_back(marker);
  options.timeout = timeout;
  MqttProbe fresh(options);
  fresh.publish(marker, "marker");
  const Message end = fresh.wait_for(marker, {}, timeout);
  std::vector<Message> result;
  for (auto& m : fresh.messages(filter)) {
    if (m.index < end.index && m.retained && m.topic != marker) result.push_back(std::move(m));
  }
  return result;
}

std::optional<std::string> MqttProbe::retained_value(const std::string& topic,
                                                     std::chrono::milliseconds timeout) const {
  for (const auto& m : fetch_retained(topic, timeout)) {
    if (m.topic == topic) return m.payload;
  }
  return std::nullopt;
}

void MqttProbe::publish(const std::string& topic, const std::string& payload, bool retain,
                        int qos) {
  publish(Outgoing{.topic = topic, .payload = payload, .retain = retain, .qos = qos});
}

std::optional<std::string> MqttProbe::try_publish(const Outgoing& message) {
  auto msg = mqtt::message::create(message.topic, message.payload, message.qos, message.retain);
  mqtt::properties props;
  if (message.response_topic) props.add({mqtt::property::RESPONSE_TOPIC, *message.response_topic});
  if (message.correlation_data) {
    props.add({mqtt::property::CORRELATION_DATA, *message.correlation_data});
  }
  if (message.message_expiry) {
    props.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, int32_t{*message.message_expiry}});
  }
  if (!props.empty()) msg->set_properties(props);
  std::string error;
  try {
    if (!client_->publish(msg)->wait_for(options_.timeout)) error = "no acknowledgement";
  } catch (const mqtt::exception& e) {
    error = e.what();
  }
  if (error.empty()) return std::nullopt;
  return error;
}

void MqttProbe::publish(const Outgoing& message) {
  if (auto error = try_publish(message)) {
    fail("MqttProbe: publishing to " + message.topic + " failed: " + *error + "\n" + dump(5));
  }
}

rapidjson::Document MqttProbe::request(const std::string& action, std::string_view payload,
                                       std::chrono::milliseconds timeout) {
  rapidjson::Document body = parse_json(payload.empty() ? std::string_view("{}") : payload);
  if (!body.IsObject()) fail("MqttProbe::request: not a JSON object: " + std::string(payload));
  if (!body.HasMember("transaction")) {
    const std::string id = unique_id("tx");
    body.AddMember("transaction", rapidjson::Value(id.c_str(), body.GetAllocator()),
                   body.GetAllocator());
  }
  const std::string transaction = to_json(body["transaction"]);
  const std::string response_topic = options_.base_topic + "/bridge/response/" + action;
  subscribe(response_topic);
  const std::size_t since = mark();
  publish(options_.base_topic + "/bridge/request/" + action, to_json(body));
  const Message reply = wait_for(
      response_topic,
      [&](const Message& m) {
        const auto json = try_parse_json(m.payload);
        return !json.HasParseError() && json.IsObject() && json.HasMember("transaction") &&
               to_json(json["transaction"]) == transaction;
      },
      timeout, since);
  return reply.json();
}

Message MqttProbe::request_v5(const std::string& action, std::string_view payload,
                              const std::string& response_topic,
                              const std::string& correlation_data,
                              std::chrono::milliseconds timeout) {
  if (options_.version != 5) fail("MqttProbe::request_v5 needs an MQTT 5 probe");
  if (has_wildcard(response_topic) || response_topic.starts_with('$')) {
    fail("MqttProbe::request_v5: nothing can arrive on '" + response_topic +
         "': use publish() and wait_for() on the fixed response topic");
  }
  subscribe(response_topic);
  const std::size_t since = mark();
  publish(Outgoing{.topic = options_.base_topic + "/bridge/request/" + action,
                   .payload = std::string(payload),
                   .response_topic = response_topic,
                   .correlation_data = correlation_data});
  return wait_for(
      response_topic, [&](const Message& m) { return m.correlation_data == correlation_data; },
      timeout, since);
}

void MqttProbe::sync(std::chrono::milliseconds timeout) {
  const std::string marker = "g2m-test/sync/" + unique_id("s");
  subscribe(marker);
  const std::size_t since = mark();
  publish(marker, "sync");
  wait_for(marker, {}, timeout, since);
}

void MqttProbe::subscribe(const std::string& filter) {
  {
    const std::lock_guard lock(state_->mutex);
    for (const auto& f : state_->filters) {
      if (f == filter || (!has_wildcard(filter) && topic_matches(f, filter))) return;
    }
    state_->filters.push_back(filter);
  }
  std::string error;
  try {
    if (!client_->subscribe(filter, 1)->wait_for(options_.timeout)) error = "no SUBACK";
  } catch (const mqtt::exception& e) {
    error = e.what();
  }
  if (!error.empty()) fail("MqttProbe: subscribing to " + filter + " failed: " + error);
}

bool MqttProbe::connected() const {
  const std::lock_guard lock(state_->mutex);
  return state_->connected;
}

std::size_t MqttProbe::connects() const {
  const std::lock_guard lock(state_->mutex);
  return state_->connects;
}

void MqttProbe::wait_connects(std::size_t at_least, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mutex);
  if (!state_->cv.wait_for(lock, timeout, [&] { return state_->connects >= at_least; })) {
    const std::string error = state_->last_error;
    lock.unlock();
    fail("MqttProbe: not (re)connected and subscribed to " + options_.url + " within " +
         millis(timeout) + (error.empty() ? "" : ": " + error));
  }
}

}  // namespace g2m::test
