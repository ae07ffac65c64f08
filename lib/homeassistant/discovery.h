#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace g2m {

// Home Assistant MQTT discovery (CONTRACT §4): one device per account with its sign-in state
// sensor, sign-in and sign-out buttons and one sensor per Graph resource. Pure: returns the
// retained (topic, payload) pairs to publish.
std::vector<std::pair<std::string, std::string>> discovery_messages(const Config& config);

// `B_A`: the id of an account's device (a `/` in B becomes `_`).
std::string discovery_node_id(const std::string& base_topic, const std::string& account);

}  // namespace g2m
