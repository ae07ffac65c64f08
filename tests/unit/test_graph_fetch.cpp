#include <doctest/doctest.h>

#include <string>

#include "fake_clock.h"
#include "graph/graph_fetch.h"
#include "scripted_http.h"

using namespace g2m;
using test::http_answer;
using test::ScriptedHttp;

namespace {

const std::string kBase = "https://graph.microsoft.com/v1.0";

struct Fetched {
  int calls = 0;
  GraphResult result;
};

// One graph_fetch against `http`, run to its end.
Fetched fetch(ScriptedHttp& http, GraphGet get, GraphAuth auth = {},
              const test::FakeClock& clock = test::FakeClock()) {
  if (!auth.bearer) auth.bearer = [] { return std::optional<std::string>("tok"); };
  Fetched f;
  graph_fetch(http, clock, std::move(get), std::move(auth), [&](GraphResult r) {
    ++f.calls;
    f.result = std::move(r);
  });
  REQUIRE(http.run());
  REQUIRE(f.calls == 1);
  return f;
}

GraphGet get(std::string path, int max_pages = 1, std::size_t max_bytes = kDefaultMaxGraphBytes) {
  return GraphGet{kBase, std::move(path), max_pages, max_bytes};
}

std::string page(const std::string& items, const std::string& next = "") {
  std::string body = R"({"@odata.context":"ctx","value":[)" + items + "]";
  if (!next.empty()) body += R"(,"@odata.nextLink":")" + next + "\"";
  return body + "}";
}

}  // namespace

TEST_CASE("graph fetch: one page is returned as the bytes received, with the bearer token") {
  ScriptedHttp http;
  http.answer(http_answer(200, R"({ "availability" : "Available" })"));
  const auto f = fetch(http, get("/me/presence"));
  CHECK(f.result.success());
  CHECK(f.result.body == R"({ "availability" : "Available" })");
  REQUIRE(http.requests.size() == 1);
  CHECK(http.requests[0].url == kBase + "/me/presence");
  CHECK(http.requests[0].headers == std::vector<std::string>{"Authorization: Bearer tok"});
}

TEST_CASE("graph fetch: signed out, nothing is sent") {
  ScriptedHttp http;
  GraphAuth auth;
  auth.bearer = [] { return std::optional<std::string>(); };
  const auto f = fetch(http, get("/me"), auth);
  CHECK(http.requests.empty());
  CHECK(f.result.code == "not_signed_in");
  CHECK_FALSE(f.result.status);
}

TEST_CASE("graph fetch: a transfer without an answer is network_error, timeout or tls_error") {
  for (const auto& [error, code] : {std::pair{TransportError::network, "network_error"},
                                    std::pair{TransportError::timeout, "timeout"},
                                    std::pair{TransportError::tls, "tls_error"}}) {
    CAPTURE(code);
    ScriptedHttp http;
    http.answer(test::transport_failure(error));
    const auto f = fetch(http, get("/me"));
    CHECK_FALSE(f.result.status);
    CHECK(f.result.code == code);
  }
}

TEST_CASE("graph fetch: Graph's error code and message are kept, with the status") {
  ScriptedHttp http;
  http.answer(http_answer(403, R"({"error":{"code":"Forbidden","message":"no"}})"));
  const auto f = fetch(http, get("/me"));
  CHECK(f.result.status == 403);
  CHECK(f.result.code == "Forbidden");
  CHECK(f.result.message == "no");
  CHECK(f.result.body_is_json);
  CHECK_FALSE(f.result.success());
}

TEST_CASE("graph fetch: a 200 that is not JSON is invalid_json") {
  ScriptedHttp http;
  http.answer(http_answer(200, "<html>"));
  const auto f = fetch(http, get("/me"));
  CHECK(f.result.status == 200);
  CHECK(f.result.code == "invalid_json");
  CHECK_FALSE(f.result.success());
}

TEST_CASE("graph fetch: a 401 refreshes once and retries once") {
  ScriptedHttp http;
  http.answer(http_answer(401, "{}"));
  http.answer(http_answer(200, R"({"a":1})"));
  std::string token = "old";
  int refreshes = 0;
  GraphAuth auth;
  auth.bearer = [&] { return std::optional<std::string>(token); };
  auth.refresh = [&](std::function<void(bool)> done) {
    ++refreshes;
    token = "new";
    done(true);
  };
  const auto f = fetch(http, get("/me"), auth);
  CHECK(f.result.success());
  CHECK(refreshes == 1);
  REQUIRE(http.requests.size() == 2);
  CHECK(http.requests[1].headers[0] == "Authorization: Bearer new");

  ScriptedHttp again;
  again.answer(http_answer(401, "{}"));
  auth.refresh = [&](std::function<void(bool)> done) { done(false); };
  const auto failed = fetch(again, get("/me"), auth);
  CHECK(failed.result.status == 401);
  CHECK(failed.result.code == "InvalidAuthenticationToken");
  CHECK(again.requests.size() == 1);
}

TEST_CASE("graph fetch: Retry-After in seconds or as an HTTP date, on the injected clock") {
  test::FakeClock clock;  // 2026-11-26T19:00:00Z
  ScriptedHttp http;
  http.answer(http_answer(429, "{}", "7"));
  CHECK(fetch(http, get("/me"), {}, clock).result.retry_after == Seconds(7));
  http.answer(http_answer(503, "{}", "Thu, 26 Nov 2026 19:00:42 GMT"));
  CHECK(fetch(http, get("/me"), {}, clock).result.retry_after == Seconds(42));
  clock.advance(Seconds(40));
  http.answer(http_answer(503, "{}", "Thu, 26 Nov 2026 19:00:42 GMT"));
  CHECK(fetch(http, get("/me"), {}, clock).result.retry_after == Seconds(2));
  // Clamped: never negative, never more than an hour.
  http.answer(http_answer(503, "{}", "Thu, 26 Nov 2026 18:00:00 GMT"));
  CHECK(fetch(http, get("/me"), {}, clock).result.retry_after == Seconds(0));
  http.answer(http_answer(503, "{}", "99999999999999999999999"));
  CHECK(fetch(http, get("/me"), {}, clock).result.retry_after == Seconds(3600));
  http.answer(http_answer(503, "{}", "soon"));
  CHECK_FALSE(fetch(http, get("/me"), {}, clock).result.retry_after);
}

TEST_CASE("graph fetch: pages are merged into the first, without @odata.nextLink") {
  ScriptedHttp http;
  http.answer(http_answer(200, page(R"({"id":1})", kBase + "/me/messages?$skip=1")));
  http.answer(http_answer(200, page(R"({"id":2},{"id":3})", kBase + "/me/messages?$skip=3")));
  http.answer(http_answer(200, page(R"({"id":4})")));
  const auto f = fetch(http, get("/me/messages", 5));
  CHECK(f.result.success());
  CHECK(f.result.body ==
        R"({"@odata.context":"ctx","value":[{"id":1},{"id":2},{"id":3},{"id":4}]})");
  CHECK(http.requests.size() == 3);
}

TEST_CASE("graph fetch: at most max_pages pages, and never a next link to another origin") {
  ScriptedHttp http;
  http.answer(http_answer(200, page(R"({"id":1})", kBase + "/me/messages?$skip=1")));
  http.answer(http_answer(200, page(R"({"id":2})", kBase + "/me/messages?$skip=2")));
  const auto f = fetch(http, get("/me/messages", 2));
  CHECK(f.result.body == R"({"@odata.context":"ctx","value":[{"id":1},{"id":2}]})");
  CHECK(http.requests.size() == 2);

  ScriptedHttp foreign;
  foreign.answer(http_answer(200, page(R"({"id":1})", "https://evil.example/steal")));
  const auto bad = fetch(foreign, get("/me/messages", 5));
  CHECK(bad.result.code == "foreign_next_link");
  CHECK_FALSE(bad.result.success());
  CHECK(foreign.requests.size() == 1);
}

TEST_CASE("graph fetch: a single body larger than the cap is too_large") {
  ScriptedHttp http;
  const std::string body = R"({"v":")" + std::string(100, 'x') + "\"}";
  http.answer(http_answer(200, body));
  const auto f = fetch(http, get("/me", 1, body.size() - 1));
  CHECK(f.result.code == "too_large");
  CHECK(f.result.status == 200);
  CHECK(f.result.body.empty());
  CHECK_FALSE(f.result.success());
  // Exactly the cap fits.
  http.answer(http_answer(200, body));
  CHECK(fetch(http, get("/me", 1, body.size())).result.success());
  // A body the HTTP client had to cut is too large whatever is left of it.
  auto cut = http_answer(200, R"({"a":1})");
  cut.truncated = true;
  http.answer(cut);
  CHECK(fetch(http, get("/me")).result.code == "too_large");
}

TEST_CASE("graph fetch: a paged merge stops at the first page that would exceed the cap") {
  const std::string item = R"({"id":")" + std::string(40, 'x') + "\"}";  // 49 bytes
  const std::string first = page(item, kBase + "/me/messages?$skip=1");
  ScriptedHttp http;
  http.answer(http_answer(200, first));
  http.answer(http_answer(200, page(item, kBase + "/me/messages?$skip=2")));
  http.answer(http_answer(200, page(item)));
  // Room for the first page and one more item, not two: the third page is never asked for.
  const std::size_t cap = first.size() + item.size() + 1 + 10;
  const auto f = fetch(http, get("/me/messages", 5, cap));
  CHECK(f.result.code == "too_large");
  CHECK(f.result.body.empty());
  CHECK(http.requests.size() == 3);  // pages 1..3 fetched; the merge of page 3 is refused

  ScriptedHttp stop;
  stop.answer(http_answer(200, first));
  stop.answer(http_answer(200, page(item + "," + item, kBase + "/me/messages?$skip=3")));
  stop.answer(http_answer(200, page(item)));
  const auto early = fetch(stop, get("/me/messages", 5, cap));
  CHECK(early.result.code == "too_large");
  CHECK(stop.requests.size() == 2);  // stopped at once: no third request
  CHECK(stop.answers_left() == 1);

  // With room for all of it, the same pages merge.
  ScriptedHttp room;
  room.answer(http_answer(200, first));
  room.answer(http_answer(200, page(item)));
  const auto merged = fetch(room, get("/me/messages", 5, first.size() + item.size() + 1));
  CHECK(merged.result.success());
  CHECK(merged.result.body.size() <= first.size() + item.size() + 1);
}
