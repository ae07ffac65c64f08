#include <doctest/doctest.h>

#include "mqtt/request.h"

using namespace g2m;

namespace {
MqttMessage msg(const std::string& action, const std::string& payload,
                std::optional<std::string> response_topic = {}) {
  MqttMessage m;
  m.topic = "g2m/bridge/request/" + action;
  m.payload = payload;
  m.response_topic = std::move(response_topic);
  return m;
}
std::string error_of(const std::variant<Request, RequestError>& r) {
  return std::get<RequestError>(r).message;
}
}  // namespace

TEST_CASE("request: an empty payload counts as {}") {
  auto r = parse_request("g2m", msg("status", ""));
  REQUIRE(std::holds_alternative<Request>(r));
  CHECK(std::get<Request>(r).action == "status");
  CHECK(std::get<Request>(r).body.IsObject());
}

TEST_CASE("request: transaction is echoed as sent, null counts as absent") {
  CHECK(std::get<Request>(parse_request("g2m", msg("status", R"({"transaction":"a1"})")))
            .transaction == "\"a1\"");
  CHECK(
      std::get<Request>(parse_request("g2m", msg("status", R"({"transaction":42})"))).transaction ==
      "42");
  CHECK_FALSE(std::get<Request>(parse_request("g2m", msg("status", R"({"transaction":null})")))
                  .transaction.has_value());
  auto bad = std::get<RequestError>(parse_request("g2m", msg("status", R"({"transaction":[1]})")));
  CHECK(bad.transaction == "[1]");
  CHECK(bad.message == "`transaction` must be a string or a number");
}

TEST_CASE("request: malformed requests are refused with a sentence that says why") {
  CHECK(error_of(parse_request("g2m", msg("login", "{"))) == "the request is not valid JSON");
  CHECK(error_of(parse_request("g2m", msg("login", "[1]"))) == "the request must be a JSON object");
  CHECK(error_of(parse_request("g2m", msg("login", "\"x\""))) ==
        "the request must be a JSON object");
  CHECK(error_of(parse_request("g2m", msg("login", "{\"a\":\"\xff\"}"))) ==
        "the request is not valid UTF-8");
  CHECK(error_of(parse_request("g2m", msg("login", R"({"account":5})"))) ==
        "`account` must be a string");
}

TEST_CASE("request: 65,536 bytes are allowed, one more is not") {
  std::string body = R"({"x":")";
  body += std::string(kMaxRequestBytes - body.size() - 2, 'a');
  body += "\"}";
  CHECK(body.size() == kMaxRequestBytes);
  CHECK(std::holds_alternative<Request>(parse_request("g2m", msg("status", body))));
  body = std::string(R"({"x":"a)") + body.substr(6);
  CHECK(error_of(parse_request("g2m", msg("status", body))) ==
        "the request is 65537 bytes; at most 65536 are allowed");
}

TEST_CASE("request: response topics with wildcards, $ or under B/ (but replies) are refused") {
  for (const char* bad :
       {"a/+/b", "a/#", "$SYS/x", "g2m/kitchen/auth/state", "g2m/bridge/request/x"}) {
    CAPTURE(bad);
    CHECK(std::holds_alternative<RequestError>(parse_request("g2m", msg("status", "{}", bad))));
  }
  for (const char* good : {"g2m/bridge/response/mine", "replies/cli1", "g2mx/y"}) {
    CAPTURE(good);
    CHECK(std::holds_alternative<Request>(parse_request("g2m", msg("status", "{}", good))));
  }
}

TEST_CASE("request: graph paths are checked before anything is sent") {
  CHECK_FALSE(check_graph_path("/me").has_value());
  CHECK_FALSE(check_graph_path("/me/presence?$select=availability").has_value());
  CHECK(check_graph_path("me").has_value());
  CHECK(check_graph_path("/me/../users").has_value());
  CHECK(check_graph_path("/me/%2e%2e/users").has_value());
  CHECK(check_graph_path("/me/%2E/x").has_value());
  CHECK(check_graph_path("/me//x").has_value());
  CHECK(check_graph_path("/https://evil.example/x").has_value());
  CHECK(check_graph_path("/me\\x").has_value());
  CHECK(check_graph_path("/me x").has_value());
  CHECK(check_graph_path("/me\nx").has_value());
}

TEST_CASE("request: graph_allow prefixes match on a segment boundary") {
  CHECK(path_allowed_by("/me", "/me"));
  CHECK(path_allowed_by("/me/presence", "/me"));
  CHECK(path_allowed_by("/me?$select=x", "/me"));
  CHECK_FALSE(path_allowed_by("/me2", "/me"));
  CHECK_FALSE(path_allowed_by("/messages", "/me"));
}

TEST_CASE("request: replies have the contract's shape") {
  CHECK(ok_reply(R"({"a":1})", "7") == R"({"status":"ok","data":{"a":1},"transaction":7})");
  CHECK(ok_reply("{}", std::nullopt) == R"({"status":"ok","data":{}})");
  CHECK(error_reply("no", 3, "\"t\"") ==
        R"({"status":"error","error":"no","retry_in":3,"transaction":"t"})");
}
