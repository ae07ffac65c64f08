#include <doctest/doctest.h>

#include "mqtt/request.h"

using namespace g2m;

namespace {
const ReplyPolicy kPolicy{"g2m", "homeassistant"};

MqttMessage msg(const std::string& action, const std::string& payload,
                std::optional<std::string> response_topic = {}) {
  MqttMessage m;
  m.topic = "g2m/bridge/request/" + action;
  m.payload = payload;
  m.response_topic = std::move(response_topic);
  return m;
}
std::variant<Request, RequestError> parse(const std::string& action, const std::string& payload,
                                          std::optional<std::string> response_topic = {}) {
  return parse_request(kPolicy, msg(action, payload, std::move(response_topic)));
}
std::string error_of(const std::variant<Request, RequestError>& r) {
  return std::get<RequestError>(r).message;
}
// The command of a request that parses, or the field error's sentence.
std::variant<Command, CommandError> command_of(const std::string& action,
                                               const std::string& payload) {
  auto r = parse(action, payload);
  REQUIRE(std::holds_alternative<Request>(r));
  return parse_command(std::get<Request>(r));
}
std::string field_error_of(const std::string& action, const std::string& payload) {
  const auto c = command_of(action, payload);
  REQUIRE(std::holds_alternative<CommandError>(c));
  CHECK_FALSE(std::get<CommandError>(c).unknown_action);
  return std::get<CommandError>(c).message;
}
template <typename C>
C command(const std::string& action, const std::string& payload) {
  const auto c = command_of(action, payload);
  REQUIRE(std::holds_alternative<Command>(c));
  REQUIRE(std::holds_alternative<C>(std::get<Command>(c)));
  return std::get<C>(std::get<Command>(c));
}
}  // namespace

TEST_CASE("request: an empty payload counts as {}") {
  auto r = parse("status", "");
  REQUIRE(std::holds_alternative<Request>(r));
  CHECK(std::get<Request>(r).action == "status");
  CHECK(std::get<Request>(r).body.IsObject());
}

TEST_CASE("request: transaction is echoed as sent, null counts as absent") {
  CHECK(std::get<Request>(parse("status", R"({"transaction":"a1"})")).transaction == "\"a1\"");
  CHECK(std::get<Request>(parse("status", R"({"transaction":42})")).transaction == "42");
  CHECK_FALSE(std::get<Request>(parse("status", R"({"transaction":null})")).transaction);
  auto bad = std::get<RequestError>(parse("status", R"({"transaction":[1]})"));
  CHECK(bad.transaction == "[1]");
  CHECK(bad.message == "`transaction` must be a string or a number");
}

TEST_CASE("request: the transaction is echoed byte for byte, never re-serialised") {
  // Numbers keep their spelling, strings their escapes, whatever JSON would write instead.
  for (const char* tx : {"1.50", "1e2", "-0", "12345678901234567890123", R"("\u00e9")",
                         R"("caf\u00E9 \/ \"q\"")", "\"caf\xC3\xA9\"", "0.1000"}) {
    CAPTURE(tx);
    const std::string payload = std::string(R"({ "account" : "k",  "transaction" :  )") + tx +
                                R"(  , "x":[1,{"transaction":2}]})";
    auto r = parse("status", payload);
    REQUIRE(std::holds_alternative<Request>(r));
    CHECK(std::get<Request>(r).transaction == tx);
    CHECK(ok_reply("{}", std::get<Request>(r).transaction) ==
          std::string(R"({"status":"ok","data":{},"transaction":)") + tx + "}");
  }
  // A wrong type is echoed as sent too, spacing inside it included.
  auto bad = std::get<RequestError>(parse("status", R"({"transaction":{ "id" : 1.0 }})"));
  CHECK(bad.transaction == R"({ "id" : 1.0 })");
  CHECK(error_reply(bad.message, std::nullopt, bad.transaction).find(R"({ "id" : 1.0 })") !=
        std::string::npos);
  // A nested "transaction" is not the request's; the first top-level one is (as FindMember).
  CHECK(std::get<Request>(parse("status", R"({"a":{"transaction":1},"transaction":"top"})"))
            .transaction == "\"top\"");
  CHECK_FALSE(std::get<Request>(parse("status", R"({"a":{"transaction":1}})")).transaction);
  CHECK(std::get<Request>(parse("status", R"({"transaction":"one","transaction":"two"})"))
            .transaction == "\"one\"");
  // A key spelt with escapes is still the transaction, as JSON reads it.
  CHECK(std::get<Request>(parse("status", R"({"transactio\u006e" : 7.0})")).transaction == "7.0");
  // A quote and a brace inside an earlier string do not end the scan early.
  CHECK(std::get<RequestError>(parse("status", R"({"s":"a\"}","transaction":[1]})")).transaction ==
        "[1]");
}

TEST_CASE("request: malformed requests are refused with a sentence that says why") {
  CHECK(error_of(parse("login", "{")) == "the request is not valid JSON");
  CHECK(error_of(parse("login", "[1]")) == "the request must be a JSON object");
  CHECK(error_of(parse("login", "\"x\"")) == "the request must be a JSON object");
  CHECK(error_of(parse("login", "{\"a\":\"\xff\"}")) == "the request is not valid UTF-8");
  CHECK(error_of(parse("login", R"({"account":5})")) == "`account` must be a string");
}

TEST_CASE("request: 65,536 bytes are allowed, one more is not") {
  std::string body = R"({"x":")";
  body += std::string(kMaxRequestBytes - body.size() - 2, 'a');
  body += "\"}";
  CHECK(body.size() == kMaxRequestBytes);
  CHECK(std::holds_alternative<Request>(parse("status", body)));
  body = std::string(R"({"x":"a)") + body.substr(6);
  CHECK(error_of(parse("status", body)) == "the request is 65537 bytes; at most 65536 are allowed");
}

TEST_CASE("request: response topics with wildcards, $ or under B/ (but replies) are refused") {
  for (const char* bad :
       {"a/+/b", "a/#", "$SYS/x", "g2m/kitchen/auth/state", "g2m/bridge/request/x", ""}) {
    CAPTURE(bad);
    CHECK(std::holds_alternative<RequestError>(parse("status", "{}", bad)));
  }
  for (const char* good : {"g2m/bridge/response/mine", "replies/cli1", "g2mx/y"}) {
    CAPTURE(good);
    CHECK(std::holds_alternative<Request>(parse("status", "{}", good)));
  }
}

TEST_CASE("request: a response topic under the Home Assistant discovery prefix is refused") {
  for (const char* bad : {"homeassistant/device/g2m_kitchen/config", "homeassistant/status",
                          "homeassistant/sensor/x/config", "homeassistant"}) {
    CAPTURE(bad);
    auto r = parse("status", R"({"transaction":"t1"})", bad);
    REQUIRE(std::holds_alternative<RequestError>(r));
    CHECK(std::get<RequestError>(r).message.find("homeassistant/") != std::string::npos);
    CHECK(std::get<RequestError>(r).transaction == "\"t1\"");
    CHECK_FALSE(response_topic_allowed(kPolicy, bad));
  }
  // Only that prefix, on a level boundary; another prefix is refused whether discovery is on
  // or not (the policy does not know, and need not).
  CHECK(response_topic_allowed(kPolicy, "homeassistantx/y"));
  CHECK(response_topic_allowed(kPolicy, "home/assistant"));
  const ReplyPolicy custom{"g2m", "ha"};
  CHECK_FALSE(response_topic_allowed(custom, "ha/device/x/config"));
  CHECK(response_topic_allowed(custom, "homeassistant/device/x/config"));
}

TEST_CASE("request: every action parses into its own command") {
  CHECK(command<LoginCommand>("login", "{}").force == false);
  CHECK_FALSE(command<LoginCommand>("login", "{}").method);
  CHECK(command<LoginCommand>("login", R"({"force":true})").force);
  CHECK(command<LoginCommand>("login", R"({"method":"browser"})").method == SignInMethod::browser);
  CHECK(command<LoginCommand>("login", R"({"method":"device_code","force":false})").method ==
        SignInMethod::device_code);
  command<LogoutCommand>("logout", R"({"account":"k"})");
  command<CancelCommand>("cancel", "");
  CHECK(command<CompleteCommand>("complete", R"({"url":"https://x/nativeclient?code=c&state=s"})")
            .url == "https://x/nativeclient?code=c&state=s");
  CHECK_FALSE(command<RefreshCommand>("refresh", "{}").resource);
  CHECK(command<RefreshCommand>("refresh", R"({"resource":"me"})").resource == "me");
  command<StatusCommand>("status", "{}");
  CHECK(command<GraphCommand>("graph", R"({"path":"/me"})").path == "/me");
  // Unknown fields are ignored.
  command<LogoutCommand>("logout", R"({"force":"yes","path":7})");
}

TEST_CASE("request: a field of the wrong type names the field") {
  CHECK(field_error_of("login", R"({"force":"true"})") == "`force` must be true or false");
  CHECK(field_error_of("login", R"({"force":null})") == "`force` must be true or false");
  CHECK(field_error_of("login", R"({"method":"password"})") ==
        "`method` must be device_code or browser");
  CHECK(field_error_of("login", R"({"method":1})") == "`method` must be device_code or browser");
  CHECK(field_error_of("refresh", R"({"resource":7})") == "`resource` must be a string");
  CHECK(field_error_of("graph", R"({"path":["/me"]})") ==
        "`path` is required and must be a string");
  CHECK(field_error_of("graph", "{}") == "`path` is required and must be a string");
}

TEST_CASE("request: complete needs a url that is a string") {
  CHECK(field_error_of("complete", "{}") == "`url` is required and must be a string");
  CHECK(field_error_of("complete", R"({"url":null})") == "`url` is required and must be a string");
  CHECK(field_error_of("complete", R"({"url":5})") == "`url` is required and must be a string");
  CHECK(field_error_of("complete", R"({"url":{"code":"c"}})") ==
        "`url` is required and must be a string");
  // Only its type is checked here: the sign-in decides whether the address is one it waits for.
  CHECK(command<CompleteCommand>("complete", R"({"url":"code=c&state=s"})").url ==
        "code=c&state=s");
}

TEST_CASE("request: an unknown action names every action, complete included") {
  const auto c = command_of("reboot", "{}");
  REQUIRE(std::holds_alternative<CommandError>(c));
  CHECK(std::get<CommandError>(c).unknown_action);
  CHECK(std::get<CommandError>(c).message ==
        "unknown action `reboot`; the actions are login, logout, cancel, complete, refresh, "
        "status, graph");
  for (const char* a : {"login", "logout", "cancel", "complete", "refresh", "status", "graph"}) {
    CAPTURE(a);
    CHECK(known_action(a));
  }
  CHECK_FALSE(known_action("Login"));
  CHECK_FALSE(known_action("login/now"));
  CHECK_FALSE(known_action(""));
}

TEST_CASE("request: replies have the contract's shape") {
  CHECK(ok_reply(R"({"a":1})", "7") == R"({"status":"ok","data":{"a":1},"transaction":7})");
  CHECK(ok_reply("{}", std::nullopt) == R"({"status":"ok","data":{}})");
  CHECK(error_reply("no", 3, "\"t\"") ==
        R"({"status":"error","error":"no","retry_in":3,"transaction":"t"})");
}
