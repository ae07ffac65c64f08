#include "mqtt/request.h"

#include <cctype>

#include "json/json.h"

namespace g2m {

namespace {
bool is_wildcard_or_system(const std::string& topic) {
  return topic.empty() || topic.find_first_of("+#") != std::string::npos || topic.front() == '$';
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

std::variant<Request, RequestError> parse_request(const std::string& base_topic,
                                                  const MqttMessage& message) {
  Request req;
  const std::string prefix = base_topic + "/bridge/request/";
  req.action = message.topic.substr(prefix.size());
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
    const std::string echoed = json::to_string(tx->value);
    if (echoed.empty()) return RequestError{"`transaction` is a number out of range", std::nullopt};
    if (!tx->value.IsString() && !tx->value.IsNumber()) {
      return RequestError{"`transaction` must be a string or a number", echoed};
    }
    req.transaction = echoed;
  }

  if (message.response_topic) {
    const std::string& rt = *message.response_topic;
    const std::string replies = base_topic + "/bridge/response/";
    if (!response_topic_allowed(base_topic, rt)) {
      return RequestError{"the response topic `" + rt +
                              "` is not allowed (wildcards, $ topics and topics under `" +
                              base_topic + "/` other than `" + replies + "` are refused)",
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

bool response_topic_allowed(const std::string& base_topic, const std::string& topic) {
  const std::string own = base_topic + "/";
  const std::string replies = base_topic + "/bridge/response/";
  if (is_wildcard_or_system(topic)) return false;
  return topic.compare(0, own.size(), own) != 0 || topic.compare(0, replies.size(), replies) == 0;
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

std::optional<std::string> check_graph_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return "`path` must start with /";
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f || c == ' ')
      return "`path` must not contain spaces or control characters";
    if (c == '\\') return "`path` must not contain a backslash";
  }
  if (path.find("//") != std::string::npos) return "`path` must not contain //";
  if (path.find("://") != std::string::npos) return "`path` must be a path, not a URL";
  // Dot segments, also percent-encoded (%2e), in the part before the query.
  const std::string route = lower(path.substr(0, path.find_first_of("?#")));
  std::string decoded;
  for (size_t i = 0; i < route.size(); ++i) {
    if (route[i] == '%' && i + 2 < route.size() && route.compare(i + 1, 2, "2e") == 0) {
      decoded += '.';
      i += 2;
    } else if (route[i] == '%' && i + 2 < route.size() && route.compare(i + 1, 2, "2f") == 0) {
      decoded += '/';
      i += 2;
    } else {
      decoded += route[i];
    }
  }
  size_t start = 1;
  while (start <= decoded.size()) {
    const size_t end = decoded.find('/', start);
    const std::string segment =
        decoded.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (segment == "." || segment == "..") return "`path` must not contain . or .. segments";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

bool path_allowed_by(const std::string& path, const std::string& prefix) {
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  const char next = path[prefix.size()];
  return next == '/' || next == '?';
}

}  // namespace g2m
