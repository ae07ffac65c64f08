#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/logger.h"
#include "config/config.h"
#include "homeassistant/discovery.h"
#include "loop/event_loop.h"
#include "mqtt/mqtt_client.h"
#include "mqtt/mqtt_session.h"

namespace g2m {

// Brings the broker's retained Home Assistant discovery configs in line with the configuration
// (docs/mqtt-api.md "Home Assistant"), once per run of the agent:
//  1. after the first connection it subscribes to `P/+/+/config` and `P/+/+/+/config` and
//     collects the retained configs, until a marker it publishes to itself comes back (the broker
//     sends retained messages when it handles the SUBSCRIBE, before the marker) or a deadline;
//  2. it sends `{"migrate_discovery": true}` to each per-entity config of an earlier version whose
//     entity is still configured, and waits until the broker has passed those on;
//  3. it publishes the device configs (retained, re-published after every reconnection and when
//     `P/status` says `online`), and waits until the broker has passed them on;
//  4. it clears the migrated configs and every config of its own the configuration no longer has.
// Waiting for its own messages to come back keeps the order Home Assistant needs whatever the
// client's queue does; each wait also ends on a deadline.
class DiscoverySync {
 public:
  DiscoverySync(const Config& config, EventLoop& loop, MqttSession& session, MqttClient& client,
                Logger& log);

  // Installs the session's connection hook; call before MqttSession::start.
  void start();
  // The subscriptions the session keeps across reconnections (`P/status` when enabled).
  std::vector<std::string> filters() const;
  // True when the message was one of discovery's (it needs nothing else).
  bool on_message(const MqttMessage& message);
  bool done() const { return phase_ == Phase::done; }
  // A reload applied account by account (same prefix, same `enabled`): publishes the device
  // configs of `config` (which must outlive this object or the next call) and clears those of
  // accounts it no longer has; during the start-up sync, that sync uses `config` instead.
  void reconfigure(const Config& config);

 private:
  enum class Phase { waiting, collecting, migrating, adopting, done };
  void on_connected();
  void end_collection();
  void publish_devices();
  void clean_up();
  void wait_for_echoes(std::set<std::string> topics, void (DiscoverySync::*next)());
  void apply_config();

  const Config* config_;
  EventLoop& loop_;
  MqttSession& session_;
  MqttClient& client_;
  Logger& log_;
  std::string prefix_;
  std::string marker_topic_;
  std::string marker_;
  Phase phase_ = Phase::waiting;
  Timer deadline_;
  RetainedConfigs retained_;
  DiscoveryPlan plan_;
  std::set<std::string> echoes_;  // topics whose message the broker has not yet passed back
  void (DiscoverySync::*after_echoes_)() = nullptr;
  std::vector<std::string> published_;
  bool reconfigured_ = false;  // a reload came while the start-up plan was being carried out
};

}  // namespace g2m
