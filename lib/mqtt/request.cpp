#include "mqtt/request.h"

#include <array>

#include "json/json.h"
#include "mqtt/topics.h"

namespace g2m {

namespace {

bool is_wildcard_or_system(const std::string& topic) {
  return topic.empty() || topic.find_first_of("+#") != std::string::npos || topic.front() == '$';
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The end of the JSON string that starts at `i` (its opening quote).
std::size_t skip_string(std::string_view text, std::size_t i) {
  for (++i; i < text.size() && text[i] != '"'; ++i) {
    if (text[i] == '\\') ++i;
  }
  return i + 1;
}

// The end of the JSON value that starts at `i`.
std::size_t skip_value(std::string_view text, std::size_t i) {
  if (i >= text.size()) return i;
  if (text[i] == '"') return skip_string(text, i);
  if (text[i] == '{' || text[i] == '[') {
    int depth = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == '"') {
        i = skip_string(text, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++i;
      if (depth == 0) break;
    }
    return i;
  }
  while (i < text.size() && !is_json_space(text[i]) && text[i] != ',' && text[i] != '}' &&
         text[i] != ']') {
    ++i;
  }
  return i;
}

std::size_t skip_space(std::string_view text, std::size_t i) {
  while (i < text.size() && is_json_space(text[i])) ++i;
  return i;
}

bool is_transaction_key(std::string_view key) {
  if (key == "\"transaction\"") return true;
  if (key.find('\\') == std::string_view::npos) return false;
  // Spelt with escapes ("transactio\u006e"): FindMember compares the decoded name.
  const auto decoded = json::parse(key);
  return decoded && decoded->IsString() &&
         std::string_view(decoded->GetString(), decoded->GetStringLength()) == "transaction";
}

// The text of the top-level member `transaction` as it stands in the payload (the first one, as
// FindMember finds), so that the reply echoes the same bytes rather than a re-serialised value
// (CONTRACT §6 Untrusted input: `1.50` stays `1.50`, `"\u00e9"` stays `"\u00e9"`). Runs only on a
// payload that json::parse accepted as an object, so the scan can trust its shape.
std::optional<std::string> transaction_text(std::string_view text) {
  std::size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  i = skip_space(text, i + 1);
  while (i < text.size() && text[i] == '"') {
    const std::size_t key_end = skip_string(text, i);
    const std::string_view key = text.substr(i, key_end - i);
    i = skip_space(text, key_end);
    if (i >= text.size() || text[i] != ':') return std::nullopt;
    const std::size_t value = skip_space(text, i + 1);
    const std::size_t value_end = skip_value(text, value);
    if (is_transaction_key(key)) return std::string(text.substr(value, value_end - value));
    i = skip_space(text, value_end);
    if (i < text.size() && text[i] == ',') i = skip_space(text, i + 1);
  }
  return std::nullopt;
}

// One row per action: its name and how its fields become its command. The "unknown action"
// sentence lists the names in this order.
struct Action {
  std::string_view name;
  std::variant<Command, CommandError> (*parse)(const rapidjson::Value& body);
};

CommandError field_error(std::string message) {
  return CommandError{std::move(message), false};
}

// An optional string field: absent, a string, or an error.
std::variant<std::optional<std::string>, CommandError> optional_string(const rapidjson::Value& body,
                                                                       const char* name,
                                                                       const char* error) {
  const auto it = body.FindMember(name);
  if (it == body.MemberEnd()) return std::optional<std::string>();
  if (!it->value.IsString()) return field_error(error);
  return std::optional<std::string>(
      std::string(it->value.GetString(), it->value.GetStringLength()));
}

std::variant<Command, CommandError> parse_login(const rapidjson::Value& body) {
  LoginCommand c;
  const auto force = body.FindMember("force");
  if (force != body.MemberEnd()) {
    if (!force->value.IsBool()) return field_error("`force` must be true or false");
    c.force = force->value.GetBool();
  }
  const auto method = body.FindMember("method");
  if (method != body.MemberEnd()) {
    const auto parsed =
        method->value.IsString()
            ? parse_sign_in_method({method->value.GetString(), method->value.GetStringLength()})
            : std::nullopt;
    if (!parsed) return field_error("`method` must be device_code or browser");
    c.method = parsed;
  }
  return c;
}

// A command whose one field is a required string: `field` (`url`, `path`).
template <typename C, std::string C::*field>
std::variant<Command, CommandError> one_required_string(const rapidjson::Value& body,
                                                        const char* name) {
  const std::string error = std::string("`") + name + "` is required and must be a string";
  auto value = optional_string(body, name, error.c_str());
  if (auto* e = std::get_if<CommandError>(&value)) return *e;
  auto& text = std::get<std::optional<std::string>>(value);
  if (!text) return field_error(error);
  C c;
  c.*field = std::move(*text);
  return c;
}

std::variant<Command, CommandError> parse_complete(const rapidjson::Value& body) {
  return one_required_string<CompleteCommand, &CompleteCommand::url>(body, "url");
}

std::variant<Command, CommandError> parse_refresh(const rapidjson::Value& body) {
  auto resource = optional_string(body, "resource", "`resource` must be a string");
  if (auto* e = std::get_if<CommandError>(&resource)) return *e;
  return RefreshCommand{std::move(std::get<std::optional<std::string>>(resource))};
}

std::variant<Command, CommandError> parse_graph(const rapidjson::Value& body) {
  return one_required_string<GraphCommand, &GraphCommand::path>(body, "path");
}

template <typename C>
std::variant<Command, CommandError> no_fields(const rapidjson::Value&) {
  return C{};
}

constexpr std::array<Action, 7> kActions = {{
    {"login", parse_login},
    {"logout", no_fields<LogoutCommand>},
    {"cancel", no_fields<CancelCommand>},
    {"complete", parse_complete},
    {"refresh", parse_refresh},
    {"status", no_fields<StatusCommand>},
    {"graph", parse_graph},
}};

const Action* find_action(std::string_view name) {
  for (const auto& a : kActions) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string unknown_action(const std::string& action) {
  std::string names;
  for (const auto& a : kActions) {
    if (!names.empty()) names += ", ";
    names += a.name;
  }
  return "unknown action `" + action + "`; the actions are " + names;
}

}  // namespace

std::variant<Request, RequestError> parse_request(const ReplyPolicy& policy,
                                                  const MqttMessage& message) {
  Request req;
  req.action = topics::request_action(policy.base_topic, message.topic).value_or(message.topic);
  req.correlation_data = message.correlation_data;

  if (message.payload.size() > kMaxRequestBytes) {
    return RequestError{"the request is " + std::to_string(message.payload.size()) +
                            " bytes; at most 65536 are allowed",
                        std::nullopt};
  }
  const std::string_view text =
      message.payload.empty() ? std::string_view("{}") : std::string_view(message.payload);
  json::ParseError why = json::ParseError::none;
  auto doc = json::parse(text, &why);
  if (!doc) {
    // Distinguish bad UTF-8 from bad JSON: the first is a different mistake to fix.
    if (why == json::ParseError::encoding)
      return RequestError{"the request is not valid UTF-8", std::nullopt};
    return RequestError{"the request is not valid JSON", std::nullopt};
  }
  if (!doc->IsObject()) return RequestError{"the request must be a JSON object", std::nullopt};
  req.body = std::move(*doc);

  const auto tx = req.body.FindMember("transaction");
  if (tx != req.body.MemberEnd() && !tx->value.IsNull()) {
    const auto echoed = transaction_text(text);
    if (!echoed) return RequestError{"`transaction` could not be read", std::nullopt};
    if (!tx->value.IsString() && !tx->value.IsNumber()) {
      return RequestError{"`transaction` must be a string or a number", echoed};
    }
    req.transaction = echoed;
  }

  if (message.response_topic) {
    const std::string& rt = *message.response_topic;
    if (!response_topic_allowed(policy, rt)) {
      return RequestError{"the response topic `" + rt +
                              "` is not allowed (wildcards, $ topics, topics under `" +
                              policy.base_topic + "/` other than `" +
                              topics::bridge_response_prefix(policy.base_topic) +
                              "` and topics under the Home Assistant prefix `" +
                              policy.discovery_prefix + "/` are refused)",
                          req.transaction};
    }
    req.response_topic = rt;
  }

  const auto acc = req.body.FindMember("account");
  if (acc != req.body.MemberEnd()) {
    if (!acc->value.IsString()) {
      return RequestError{"`account` must be a string", req.transaction};
    }
    req.account = std::string(acc->value.GetString(), acc->value.GetStringLength());
  }
  return req;
}

bool response_topic_allowed(const ReplyPolicy& policy, const std::string& topic) {
  if (is_wildcard_or_system(topic)) return false;
  if (!policy.discovery_prefix.empty() && topics::is_under(topic, policy.discovery_prefix)) {
    return false;
  }
  const std::string own = policy.base_topic + "/";
  const std::string replies = topics::bridge_response_prefix(policy.base_topic);
  return topic.compare(0, own.size(), own) != 0 || topic.compare(0, replies.size(), replies) == 0;
}

bool known_action(std::string_view action) {
  return find_action(action) != nullptr;
}

std::variant<Command, CommandError> parse_command(const Request& request) {
  const Action* action = find_action(request.action);
  if (action == nullptr) return CommandError{unknown_action(request.action), true};
  return action->parse(request.body);
}

std::string ok_reply(const std::string& data_json, const std::optional<std::string>& transaction) {
  std::string out = R"({"status":"ok","data":)" + data_json;
  if (transaction) out += R"(,"transaction":)" + *transaction;
  out += '}';
  return out;
}

std::string error_reply(const std::string& error, std::optional<long long> retry_in,
                        const std::optional<std::string>& transaction) {
  rapidjson::StringBuffer buffer;
  json::Writer w(buffer);
  w.StartObject();
  w.Key("status");
  w.String("error");
  w.Key("error");
  json::write_string(w, error);
  if (retry_in) {
    w.Key("retry_in");
    w.Int64(*retry_in);
  }
  if (transaction) {
    w.Key("transaction");
    w.RawValue(transaction->data(), transaction->size(), rapidjson::kStringType);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace g2m
