#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <rapidjson/document.h>

#include "identity/sign_in_method.h"
#include "mqtt/mqtt_client.h"

namespace g2m {

// A bridge request, parsed and checked against CONTRACT §2 before any state is touched: first
// the envelope (parse_request: size, UTF-8, JSON object, transaction, account, response topic),
// then, once the account is known, the action's own fields (parse_command).
struct Request {
  std::string action;
  rapidjson::Document body;                // always an object ({} for an empty payload)
  std::optional<std::string> transaction;  // the JSON text to echo, exactly as sent
  std::optional<std::string> account;      // as sent; resolution against config happens later
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
};

struct RequestError {
  std::string message;
  std::optional<std::string> transaction;  // echoed as sent, even when of the wrong type
};

inline constexpr std::size_t kMaxRequestBytes = 65536;

// The topics a request may not send its replies to (CONTRACT §2): B/... (but
// B/bridge/response/...) and P/... where P is homeassistant.prefix, enabled or not.
struct ReplyPolicy {
  std::string base_topic;
  std::string discovery_prefix;
};

// `message.topic` is B/bridge/request/<action>. Checks size, UTF-8, JSON object, transaction
// and account types, and the MQTT 5 response topic.
std::variant<Request, RequestError> parse_request(const ReplyPolicy& policy,
                                                  const MqttMessage& message);

// True when replies may go to this MQTT 5 response topic: no wildcard, not a $ topic, not under
// B/ except under B/bridge/response/ (a request must not make the agent overwrite its own state
// topics), and not under the discovery prefix (nor make Home Assistant entities).
bool response_topic_allowed(const ReplyPolicy& policy, const std::string& topic);

// The commands, one struct per action (CONTRACT §2 table).
struct LoginCommand {
  bool force = false;
  std::optional<SignInMethod> method;  // nullopt: the account's sign_in_method
};
struct LogoutCommand {};
struct CancelCommand {};
struct CompleteCommand {
  std::string url;  // the address the browser ended at, or its query string (a secret)
};
struct RefreshCommand {
  std::optional<std::string> resource;
};
struct StatusCommand {};
struct GraphCommand {
  std::string path;
};
using Command = std::variant<LoginCommand, LogoutCommand, CancelCommand, CompleteCommand,
                             RefreshCommand, StatusCommand, GraphCommand>;

struct CommandError {
  std::string message;
  bool unknown_action = false;  // else a field of the wrong type or a missing one
};

// The action's fields read into its command. Unknown fields are ignored.
std::variant<Command, CommandError> parse_command(const Request& request);

// True when `action` names a command.
bool known_action(std::string_view action);

// The reply payload: {"status":"ok","data":<data_json>,"transaction":X} or
// {"status":"error","error":"...","retry_in":N,"transaction":X}.
std::string ok_reply(const std::string& data_json, const std::optional<std::string>& transaction);
std::string error_reply(const std::string& error, std::optional<long long> retry_in,
                        const std::optional<std::string>& transaction);

}  // namespace g2m
