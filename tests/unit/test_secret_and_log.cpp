// Low-level hardening: Secret is move-only and wiped, log lines cannot carry control characters,
// a token that would break a header is never sent (issue 14, low items).
#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "common/logger.h"
#include "common/secret.h"
#include "fake_clock.h"
#include "graph/graph_fetch.h"
#include "json/json.h"

using namespace g2m;

static_assert(!std::is_copy_constructible_v<Secret>, "a Secret is never copied by accident");
static_assert(!std::is_copy_assignable_v<Secret>, "a Secret is never copied by accident");
static_assert(std::is_nothrow_move_constructible_v<Secret>);

TEST_CASE("secret: moving hands the value over and leaves the source empty") {
  Secret a(std::string(100, 'k'));  // on the heap: moved, not copied
  const char* heap = a.reveal().data();
  Secret b(std::move(a));
  CHECK(b.reveal() == std::string(100, 'k'));
  CHECK(b.reveal().data() == heap);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the point of the test

  Secret small("short");  // in the string object itself (SSO): copied, so the source is wiped
  Secret c;
  c = std::move(small);
  CHECK(c.reveal() == "short");
  CHECK(small.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(c.copy() == c);
}

TEST_CASE("secret: clear() zeroes the whole buffer before releasing it") {
  // A value that was longer once: the bytes past its end hold the rest of the old value.
  std::string value(64, 'x');
  value.resize(10);
  Secret s(std::move(value));
  const std::string& inside = s.reveal();
  const char* bytes = inside.data();
  const std::size_t capacity = inside.capacity();
  s.clear();
  CHECK(s.empty());
  // clear() keeps the buffer (std::string::clear never frees): it can be inspected.
  CHECK(s.reveal().data() == bytes);
  for (std::size_t i = 0; i < capacity; ++i) {
    CAPTURE(i);
    REQUIRE(bytes[i] == '\0');
  }
}

TEST_CASE("log: control characters in a line are written as \\xNN") {
  std::vector<std::string> lines;
  Logger log(LogLevel::debug, [&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  log.warn("user: ", "evil\x1b[2J\r\n2026-12-03T00:00:00Z error forged",
           "\t\x7f|\xc2\x9b|\xc3\xa9");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] ==
        "user: evil\\x1b[2J\\x0d\\x0a2026-12-03T00:00:00Z error "
        "forged\\x09\\x7f|\\xc2\\x9b|\xc3\xa9");
  CHECK(lines[0].find('\n') == std::string::npos);
  CHECK(escape_control_characters("plain text, caf\xc3\xa9") == "plain text, caf\xc3\xa9");
  CHECK(escape_control_characters(std::string("a\0b", 3)) == "a\\x00b");
}

namespace {
// An Http that records what it was asked to send and never answers.
struct RecordingHttp : Http {
  std::vector<HttpRequest> sent;
  RequestId send(HttpRequest request, Callback) override {
    sent.push_back(std::move(request));
    return sent.size();
  }
  void cancel(RequestId) override {}
};
}  // namespace

TEST_CASE("graph: an access token with a CR, LF or other control character is never sent") {
  for (const std::string& token : {std::string("AT\r\nX-Injected: 1"), std::string("AT\n"),
                                   std::string("A T"), std::string("AT\x01"), std::string()}) {
    CAPTURE(token);
    RecordingHttp http;
    std::optional<GraphResult> result;
    GraphAuth auth;
    auth.bearer = [&token]() -> std::optional<std::string> { return token; };
    graph_fetch(http, test::FakeClock{}, {"https://graph.microsoft.com/v1.0", "/me", 1}, auth,
                [&](GraphResult r) { result = std::move(r); });
    CHECK(http.sent.empty());
    REQUIRE(result.has_value());
    CHECK_FALSE(result->success());
    CHECK(result->code == "invalid_token");
    CHECK(result->message.find("AT") == std::string::npos);
  }
  RecordingHttp http;
  GraphAuth auth;
  auth.bearer = []() -> std::optional<std::string> { return std::string("eyJ0.good-token_~+/="); };
  graph_fetch(http, test::FakeClock{}, {"https://graph.microsoft.com/v1.0", "/me", 1}, auth,
              [](GraphResult) {});
  REQUIRE(http.sent.size() == 1);
  CHECK(http.sent[0].headers ==
        std::vector<std::string>{"Authorization: Bearer eyJ0.good-token_~+/="});
}

TEST_CASE("graph: a Graph body nested deeper than 256 levels is invalid_json") {
  struct AnsweringHttp : Http {
    std::string body;
    RequestId send(HttpRequest, Callback callback) override {
      HttpResponse r;
      r.status = 200;
      r.body = body;
      r.content_type = "application/json";
      callback(std::move(r));
      return 1;
    }
    void cancel(RequestId) override {}
  };
  for (const int pages : {1, 3}) {
    CAPTURE(pages);
    AnsweringHttp http;
    http.body = std::string(200000, '[') + std::string(200000, ']');
    std::optional<GraphResult> result;
    GraphAuth auth;
    auth.bearer = []() -> std::optional<std::string> { return std::string("AT"); };
    graph_fetch(http, test::FakeClock{}, {"https://graph.microsoft.com/v1.0", "/me", pages}, auth,
                [&](GraphResult r) { result = std::move(r); });
    REQUIRE(result.has_value());
    CHECK(result->code == "invalid_json");
    CHECK_FALSE(result->success());
  }
}
