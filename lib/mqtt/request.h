#pragma once

#include <optional>
#include <string>
#include <variant>

#include <rapidjson/document.h>

#include "mqtt/mqtt_client.h"

namespace g2m {

// A bridge request, parsed and checked against CONTRACT §2 before any state is touched.
struct Request {
  std::string action;
  rapidjson::Document body;                // always an object ({} for an empty payload)
  std::optional<std::string> transaction;  // the JSON text to echo (a string or a number)
  std::optional<std::string> account;      // as sent; resolution against config happens later
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
};

struct RequestError {
  std::string message;
  std::optional<std::string> transaction;  // echoed as sent, even when of the wrong type
};

inline constexpr std::size_t kMaxRequestBytes = 65536;

// `base_topic` is B; `message.topic` is B/bridge/request/<action>. Checks size, UTF-8, JSON
// object, transaction and account types, and the MQTT 5 response topic.
std::variant<Request, RequestError> parse_request(const std::string& base_topic,
                                                  const MqttMessage& message);

// True when replies may go to this MQTT 5 response topic: no wildcard, not a $ topic, and not
// under B/ except under B/bridge/response/ (a request must not make the agent overwrite its own
// state topics).
bool response_topic_allowed(const std::string& base_topic, const std::string& topic);

// The reply payload: {"status":"ok","data":<data_json>,"transaction":X} or
// {"status":"error","error":"...","retry_in":N,"transaction":X}.
std::string ok_reply(const std::string& data_json, const std::optional<std::string>& transaction);
std::string error_reply(const std::string& error, std::optional<long long> retry_in,
                        const std::optional<std::string>& transaction);

// True when a resource/graph path is safe to append to the Graph base (CONTRACT §2 `graph`).
std::optional<std::string> check_graph_path(const std::string& path);
// True when `path` starts with `prefix` on a segment boundary (/me allows /me/x and /me?x).
bool path_allowed_by(const std::string& path, const std::string& prefix);

}  // namespace g2m
