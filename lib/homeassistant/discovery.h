#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace g2m {

// Home Assistant MQTT device-based discovery (docs/mqtt-api.md "Home Assistant", HA 2024.11+): one
// retained config per account on `P/device/B_A/config` holding all its components (sign-in state,
// QR code, buttons, one sensor per Graph resource), and one bridge device with a connectivity
// sensor. Pure: these functions build payloads and plans; DiscoverySync publishes them.

using RetainedConfigs = std::map<std::string, std::string>;  // topic -> payload

// The device configs of the current configuration (empty when discovery is disabled), the
// bridge device first. `previous` holds the retained device configs read at start: a component
// one of them has that the configuration no longer has is sent as `{"platform": ...}` alone,
// which is how Home Assistant removes one component of a device.
std::vector<std::pair<std::string, std::string>> discovery_messages(
    const Config& config, const RetainedConfigs& previous = {});

// A resource sensor's name as Home Assistant shows it: what the Graph path is ("Presence",
// "Calendar", "Mail", ...), followed by the resource's own name where that says more ("Calendar
// today"); the resource's name alone, made readable ("Next meeting"), for other paths.
std::string resource_display_name(const std::string& name, const std::string& path);

// `B_A`: the id of an account's device (a `/` in B becomes `_`); `B_bridge` for the bridge.
std::string discovery_node_id(const std::string& base_topic, const std::string& account);

// True when a discovery payload is this agent's: its availability names `B/bridge/state`
// (another agent, with another base topic, owns the others).
bool is_own_discovery_config(const std::string& payload, const std::string& base_topic);

// What to do at start with the retained discovery configs found under the prefix.
struct DiscoveryPlan {
  // Per-entity configs an earlier version published (`P/<component>/B_A/<key>/config`) whose
  // entity the configuration still has: `{"migrate_discovery": true}` first, then cleared once
  // the device config is out, so Home Assistant keeps the entity and its history.
  std::vector<std::string> migrate;
  // Configs of ours that the configuration no longer has (a removed account or resource, or all
  // of them when discovery is disabled): cleared with an empty retained payload.
  std::vector<std::string> clear;
  // The device configs to publish.
  std::vector<std::pair<std::string, std::string>> publish;
};
DiscoveryPlan plan_discovery(const Config& config, const RetainedConfigs& retained);

}  // namespace g2m
