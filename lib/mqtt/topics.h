#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace g2m {

// Every MQTT topic the agent publishes or subscribes to (CONTRACT §1, §2, §4), built in one
// place. B is mqtt.base_topic, A an account, R a resource, P homeassistant.prefix.
namespace topics {

std::string bridge_state(std::string_view base);  // B/bridge/state (also the will)
std::string bridge_info(std::string_view base);   // B/bridge/info
std::string bridge_request(std::string_view base, std::string_view action);
std::string bridge_request_filter(std::string_view base);  // B/bridge/request/#
std::string bridge_response(std::string_view base, std::string_view action);
std::string bridge_response_prefix(std::string_view base);  // B/bridge/response/
// The action of a request topic B/bridge/request/<action>; nullopt for any other topic.
std::optional<std::string> request_action(std::string_view base, std::string_view topic);

std::string auth_state(std::string_view base, std::string_view account);
std::string auth_code(std::string_view base, std::string_view account);
std::string auth_qr(std::string_view base, std::string_view account);
std::string events(std::string_view base, std::string_view account);
std::string graph(std::string_view base, std::string_view account, std::string_view resource);

// P/status: Home Assistant's birth and last-will messages.
std::string homeassistant_status(std::string_view prefix);

// True when `topic` is `prefix` itself or lies under `prefix/`.
bool is_under(std::string_view topic, std::string_view prefix);

}  // namespace topics

// The topics of one account, B/A/..., kept as one prefix string.
class AccountTopics {
 public:
  AccountTopics(std::string_view base, std::string_view account);
  std::string auth_state() const { return prefix_ + "auth/state"; }
  std::string auth_code() const { return prefix_ + "auth/code"; }
  std::string auth_qr() const { return prefix_ + "auth/qr"; }
  std::string events() const { return prefix_ + "events"; }
  std::string graph(std::string_view resource) const;

 private:
  std::string prefix_;  // "B/A/"
};

}  // namespace g2m
