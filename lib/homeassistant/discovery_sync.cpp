#include "homeassistant/discovery_sync.h"

#include <algorithm>
#include <random>

namespace g2m {

namespace {
constexpr Millis kCollectFor{3000};  // the longest wait for the marker after connecting
constexpr Millis kEchoWait{5000};
const std::string kMigrate = R"({"migrate_discovery":true})";
}  // namespace

DiscoverySync::DiscoverySync(const Config& config, EventLoop& loop, MqttSession& session,
                             MqttClient& client, Logger& log)
    : config_(&config),
      loop_(loop),
      session_(session),
      client_(client),
      log_(log),
      prefix_(config.homeassistant_prefix + "/"),
      // Under the prefix, where Home Assistant ignores it (it only reads `.../config` topics).
      marker_topic_(prefix_ + "graph2mqtt/" + discovery_node_id(config.mqtt.base_topic, "bridge") +
                    "/sync"),
      deadline_(loop) {}

void DiscoverySync::start() {
  session_.on_connected([this] { on_connected(); });
}

std::vector<std::string> DiscoverySync::filters() const {
  if (!config_->homeassistant_enabled) return {};
  return {prefix_ + "status"};
}

void DiscoverySync::on_connected() {
  // A reconnection during the collection starts it again: a clean session lost the
  // subscriptions. Later ones need nothing: the session re-publishes the device configs.
  if (phase_ != Phase::waiting && phase_ != Phase::collecting) return;
  phase_ = Phase::collecting;
  retained_.clear();
  std::random_device random;
  marker_ = std::to_string(random()) + "-" + std::to_string(random());
  client_.subscribe(prefix_ + "+/+/config", 1);
  client_.subscribe(prefix_ + "+/+/+/config", 1);
  client_.subscribe(marker_topic_, 1);
  OutgoingMessage marker;
  marker.topic = marker_topic_;
  marker.payload = marker_;
  session_.send(std::move(marker));
  deadline_.start_after(kCollectFor, [this] {
    log_.warn("home assistant: the retained discovery configs did not all arrive within ",
              kCollectFor.count() / 1000, " s; going on with those that did");
    end_collection();
  });
}

bool DiscoverySync::on_message(const MqttMessage& message) {
  const std::string& t = message.topic;
  const std::string suffix = "/config";
  const bool config_topic = t.size() > prefix_.size() + suffix.size() &&
                            t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
  if (t.compare(0, prefix_.size(), prefix_) != 0 ||
      (t != prefix_ + "status" && t != marker_topic_ && !config_topic)) {
    return false;
  }
  if (message.topic == prefix_ + "status") {
    // Home Assistant's birth message: it may have lost its entities, so send them again.
    if (config_->homeassistant_enabled && message.payload == "online" && !published_.empty()) {
      log_.info("Home Assistant is online: re-publishing discovery");
      for (const auto& topic : published_) session_.republish(topic);
    }
    return true;
  }
  switch (phase_) {
    case Phase::collecting:
      if (message.topic == marker_topic_) {
        if (message.payload == marker_) end_collection();
      } else if (message.payload.empty()) {
        retained_.erase(message.topic);
      } else {
        retained_[message.topic] = message.payload;
      }
      break;
    case Phase::migrating:
    case Phase::adopting:
      if (echoes_.erase(message.topic) != 0 && echoes_.empty()) {
        deadline_.cancel();
        (this->*after_echoes_)();
      }
      break;
    default:
      break;
  }
  return true;
}

void DiscoverySync::wait_for_echoes(std::set<std::string> topics, void (DiscoverySync::*next)()) {
  echoes_ = std::move(topics);
  after_echoes_ = next;
  deadline_.start_after(kEchoWait, [this] {
    log_.warn("home assistant: the broker did not pass back ", echoes_.size(),
              " discovery message(s) within ", kEchoWait.count() / 1000, " s; going on");
    echoes_.clear();
    (this->*after_echoes_)();
  });
}

void DiscoverySync::end_collection() {
  deadline_.cancel();
  plan_ = plan_discovery(*config_, retained_);
  reconfigured_ = false;
  retained_.clear();
  if (plan_.migrate.empty()) {
    publish_devices();
    return;
  }
  log_.info("home assistant: migrating ", plan_.migrate.size(),
            " per-entity discovery config(s) to device-based discovery");
  phase_ = Phase::migrating;
  for (const auto& topic : plan_.migrate) {
    OutgoingMessage m;
    m.topic = topic;
    m.payload = kMigrate;
    m.retain = true;
    session_.send(std::move(m));
  }
  wait_for_echoes({plan_.migrate.begin(), plan_.migrate.end()}, &DiscoverySync::publish_devices);
}

void DiscoverySync::publish_devices() {
  std::set<std::string> topics;
  for (auto& [topic, payload] : plan_.publish) {
    published_.push_back(topic);
    topics.insert(topic);
    session_.set_retained(topic, std::move(payload));
  }
  plan_.publish.clear();
  if (plan_.migrate.empty()) {
    clean_up();
    return;
  }
  // Home Assistant adopts the migrated entities from the device config: only then may the old
  // configs go.
  phase_ = Phase::adopting;
  wait_for_echoes(std::move(topics), &DiscoverySync::clean_up);
}

void DiscoverySync::clean_up() {
  if (!plan_.clear.empty()) {
    log_.info("home assistant: removing ", plan_.clear.size(),
              " discovery config(s) the configuration no longer has");
  }
  for (const auto* list : {&plan_.migrate, &plan_.clear}) {
    for (const auto& topic : *list) session_.set_retained(topic, "");
  }
  plan_ = {};
  phase_ = Phase::done;
  if (reconfigured_) apply_config();
}

void DiscoverySync::reconfigure(const Config& config) {
  config_ = &config;
  if (phase_ == Phase::waiting || phase_ == Phase::collecting) return;  // the plan is still ahead
  if (phase_ != Phase::done) {
    reconfigured_ = true;  // applied once the start-up plan is carried out
    return;
  }
  apply_config();
}

void DiscoverySync::apply_config() {
  reconfigured_ = false;
  // What is published now tells which components a device loses (sent as `{"platform": ...}`).
  RetainedConfigs previous;
  for (const auto& topic : published_) {
    if (const auto* payload = session_.retained_value(topic)) previous[topic] = *payload;
  }
  std::vector<std::string> now;
  for (auto& [topic, payload] : discovery_messages(*config_, previous)) {
    now.push_back(topic);
    const auto* current = session_.retained_value(topic);
    if (current == nullptr || *current != payload) session_.set_retained(topic, std::move(payload));
  }
  std::size_t removed = 0;
  for (const auto& topic : published_) {
    if (std::find(now.begin(), now.end(), topic) != now.end()) continue;
    session_.set_retained(topic, "");
    ++removed;
  }
  if (removed != 0) {
    log_.info("home assistant: removing ", removed,
              " discovery config(s) the configuration no longer has");
  }
  published_ = std::move(now);
}

}  // namespace g2m
