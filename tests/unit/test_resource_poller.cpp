#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "fake_clock.h"
#include "graph/resource_poller.h"
#include "scripted_http.h"

using namespace g2m;
using namespace std::chrono_literals;
using test::http_answer;

namespace {

const std::string kBase = "https://graph.microsoft.com/v1.0";

// What the account would publish: graph/R bodies and graph_error events.
class RecordingSink final : public ResourceSink {
 public:
  struct Error {
    std::string resource;
    std::optional<long> status;
    std::string code;
    Millis retry_in;
  };

  const std::string* published_body(const std::string& resource) const override {
    const auto it = retained.find(resource);
    return it == retained.end() ? nullptr : &it->second;
  }
  void publish_body(const std::string& resource, const std::string& body) override {
    retained[resource] = body;
    published.push_back(body);
  }
  void graph_error(const std::string& resource, const GraphResult& result,
                   Millis retry_in) override {
    errors.push_back({resource, result.status, result.code, retry_in});
  }

  std::map<std::string, std::string> retained;
  std::vector<std::string> published;
  std::vector<Error> errors;
};

struct World {
  explicit World(Millis every = 60s, std::size_t max_bytes = kDefaultMaxGraphBytes,
                 int max_pages = 1)
      : poller(
            loop, http, PolledResource{"presence", "/me/presence", every, max_pages}, kBase, auth(),
            jitter, [max_bytes] { return max_bytes; }, sink) {}

  GraphAuth auth() {
    GraphAuth a;
    a.bearer = [this]() -> std::optional<std::string> {
      if (!signed_in) return std::nullopt;
      return token;
    };
    a.refresh = [this](std::function<void(bool)> done) {
      ++refreshes;
      token = "fresh";
      done(refresh_ok);
    };
    return a;
  }

  // Lets `d` of fake time pass, answering every request as it is sent.
  void run_for(Millis d) {
    const auto end = clock.steady() + d;
    do {
      REQUIRE(http.run());
      loop.run_once(std::chrono::duration_cast<Millis>(end - clock.steady()));
      REQUIRE(http.run());
    } while (clock.steady() < end);
  }
  std::size_t fetches() const { return http.requests.size(); }

  test::FakeClock clock;
  test::FakePoller fake_poller{clock};
  EventLoop loop{clock, fake_poller};
  test::ScriptedHttp http;
  RecordingSink sink;
  Jitter jitter{42};
  bool signed_in = true;
  bool refresh_ok = true;
  int refreshes = 0;
  std::string token = "tok";
  ResourcePoller poller;
};

}  // namespace

TEST_CASE("resource poller: the first fetch is published at once, then only a changed body") {
  World w;
  w.http.answer(http_answer(200, R"({"availability":"Available"})"));
  w.http.answer(http_answer(200, R"({ "availability" : "Available" })"));  // same JSON
  w.http.answer(http_answer(200, R"({"availability":"Busy"})"));
  w.poller.start_now();
  w.run_for(0ms);
  CHECK(w.fetches() == 1);
  CHECK(w.sink.published == std::vector<std::string>{R"({"availability":"Available"})"});
  w.run_for(60s);
  CHECK(w.fetches() == 2);
  CHECK(w.sink.published.size() == 1);  // equal as JSON: not published again
  w.run_for(60s);
  CHECK(w.fetches() == 3);
  REQUIRE(w.sink.published.size() == 2);
  CHECK(w.sink.published.back() == R"({"availability":"Busy"})");  // the bytes received
  CHECK(w.sink.errors.empty());
}

TEST_CASE("resource poller: fetches come every `every`, at most 5 % early") {
  World w(100s);
  for (int i = 0; i < 4; ++i) w.http.answer(http_answer(200, "{}"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.fetches() == 1);
  w.run_for(94'999ms);
  CHECK(w.fetches() == 1);  // not before 95 s
  w.run_for(5'001ms);
  CHECK(w.fetches() == 2);  // by 100 s
}

TEST_CASE("resource poller: a 429 with Retry-After waits that long before the next fetch") {
  World w;
  w.http.answer(http_answer(429, R"({"error":{"code":"TooManyRequests","message":"slow"}})", "30"));
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "TooManyRequests");
  CHECK(w.sink.errors[0].status == 429);
  CHECK(w.sink.errors[0].retry_in == 30s);
  CHECK(w.poller.retry_after_left() == Seconds(30));
  w.run_for(29'999ms);
  CHECK(w.fetches() == 1);
  CHECK(w.poller.retry_after_left() == Seconds(1));
  w.run_for(1ms);
  CHECK(w.fetches() == 2);
  CHECK(w.sink.published.size() == 1);
  CHECK_FALSE(w.poller.retry_after_left());  // a success closes the window
}

TEST_CASE("resource poller: a 503 with an HTTP-date Retry-After waits until then on the clock") {
  World w;  // the fake clock's wall time is 2026-11-26T19:00:00Z
  w.http.answer(http_answer(503, "{}", "Thu, 26 Nov 2026 19:00:20 GMT"));
  w.http.answer(http_answer(200, "{}"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "http_503");
  CHECK(w.sink.errors[0].retry_in == 20s);
  w.run_for(19s);
  CHECK(w.fetches() == 1);
  w.run_for(1s);
  CHECK(w.fetches() == 2);
}

TEST_CASE("resource poller: a Retry-After of 0 still waits a second") {
  World w;
  w.http.answer(http_answer(429, "{}", "0"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].retry_in == 1s);
}

TEST_CASE("resource poller: Retry-After is clamped to an hour") {
  World w;
  w.http.answer(http_answer(429, "{}", "86400"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].retry_in == 3600s);
}

TEST_CASE("resource poller: other failures back off from `every`, capped at max(every, 1 h)") {
  World w(600s);
  for (int i = 0; i < 6; ++i) w.http.answer(http_answer(404, "{}"));
  w.poller.start_now();
  w.run_for(0ms);
  // 600 s, 1200 s, 2400 s, then the cap of 3600 s; each scaled by a jitter in [0.8, 1.0].
  const Millis expected[] = {600s, 1200s, 2400s, 3600s, 3600s};
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    CAPTURE(i);
    REQUIRE(w.sink.errors.size() == i + 1);
    const Millis retry = w.sink.errors[i].retry_in;
    CHECK(retry <= expected[i]);
    CHECK(retry >= expected[i] * 8 / 10);
    w.run_for(retry);
  }
  // A 403 or 404 is not Retry-After: the window stays closed.
  CHECK_FALSE(w.poller.retry_after_left());
}

TEST_CASE("resource poller: a success resets the backoff") {
  World w(10s);
  w.http.answer(test::transport_failure(TransportError::timeout));
  w.http.answer(test::transport_failure(TransportError::timeout));
  w.http.answer(http_answer(200, "{}"));
  w.http.answer(test::transport_failure(TransportError::tls));
  w.poller.start_now();
  w.run_for(0ms);
  w.run_for(w.sink.errors.back().retry_in);
  REQUIRE(w.sink.errors.size() == 2);
  CHECK(w.sink.errors[1].code == "timeout");
  CHECK_FALSE(w.sink.errors[1].status);
  CHECK(w.sink.errors[1].retry_in >= 16s);  // the second failure: twice `every`, jittered
  w.run_for(w.sink.errors.back().retry_in);
  CHECK(w.sink.published.size() == 1);
  w.run_for(10s);
  REQUIRE(w.sink.errors.size() == 3);
  CHECK(w.sink.errors[2].code == "tls_error");
  CHECK(w.sink.errors[2].retry_in <= 10s);  // back to `every`
}

TEST_CASE("resource poller: a body larger than the cap is too_large, the previous body stays") {
  World w(60s, 64);
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.http.answer(http_answer(200, R"({"a":")" + std::string(100, 'x') + "\"}"));
  w.poller.start_now();
  w.run_for(0ms);
  w.run_for(60s);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "too_large");
  CHECK(w.sink.errors[0].status == 200);
  CHECK(w.sink.errors[0].retry_in <= 60s);
  CHECK(w.sink.published == std::vector<std::string>{R"({"a":1})"});
  CHECK(w.sink.retained["presence"] == R"({"a":1})");
}

TEST_CASE("resource poller: a paged resource over the cap is too_large and nothing is published") {
  World w(60s, 120, 5);
  const std::string next = kBase + "/me/presence?$skip=1";
  w.http.answer(http_answer(200, R"({"value":[{"id":1}],"@odata.nextLink":")" + next + "\"}"));
  w.http.answer(http_answer(200, R"({"value":[{"id":")" + std::string(100, 'x') + "\"}]}"));
  w.poller.start_now();
  w.run_for(0ms);
  CHECK(w.fetches() == 2);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "too_large");
  CHECK(w.sink.published.empty());
}

TEST_CASE("resource poller: a body that is not JSON is a graph_error invalid_json") {
  World w;
  w.http.answer(http_answer(200, "not json"));
  w.poller.start_now();
  w.run_for(0ms);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "invalid_json");
  CHECK(w.sink.published.empty());
}

TEST_CASE("resource poller: a 401 refreshes through GraphAuth and retries with the new token") {
  World w;
  w.http.answer(http_answer(401, "{}"));
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.poller.start_now();
  w.run_for(0ms);
  CHECK(w.refreshes == 1);
  REQUIRE(w.fetches() == 2);
  CHECK(w.http.requests[1].headers[0] == "Authorization: Bearer fresh");
  CHECK(w.sink.published.size() == 1);
}

TEST_CASE("resource poller: a forced fetch publishes an unchanged body and answers with it") {
  World w;
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.poller.start_now();
  w.run_for(0ms);
  std::optional<long> status;
  w.poller.fetch([&](const GraphResult& r) { status = r.status; });
  w.run_for(0ms);
  CHECK(status == 200);
  CHECK(w.sink.published.size() == 2);
}

TEST_CASE("resource poller: stop drops the fetch under way, the next start publishes again") {
  World w;
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.poller.start_now();
  w.loop.run_once(0ms);  // the fetch is sent, not yet answered
  REQUIRE(w.fetches() == 1);
  w.poller.stop();
  w.run_for(120s);
  CHECK(w.sink.published.empty());  // its answer came after the stop
  CHECK(w.fetches() == 1);          // and nothing was scheduled

  w.sink.retained["presence"] = R"({"a":1})";
  w.http.answer(http_answer(200, R"({"a":1})"));
  w.poller.start_now();
  w.run_for(0ms);
  CHECK(w.sink.published.size() == 1);  // unchanged, but the first after a start
}

TEST_CASE("resource poller: resume starts only a poller that is idle") {
  World w;
  w.http.answer(http_answer(200, "{}"));
  w.poller.resume();
  w.run_for(0ms);
  CHECK(w.fetches() == 1);
  w.poller.resume();  // scheduled already: no extra fetch
  w.run_for(0ms);
  CHECK(w.fetches() == 1);
}

TEST_CASE("resource poller: signed out, a fetch sends nothing and reports not_signed_in") {
  World w;
  w.signed_in = false;
  w.poller.start_now();
  w.run_for(0ms);
  CHECK(w.fetches() == 0);
  REQUIRE(w.sink.errors.size() == 1);
  CHECK(w.sink.errors[0].code == "not_signed_in");
}

TEST_CASE("resource poller: path placeholders are expanded at every fetch") {
  test::FakeClock clock;
  test::FakePoller fake(clock);
  EventLoop loop(clock, fake);
  test::ScriptedHttp http;
  RecordingSink sink;
  Jitter jitter(1);
  GraphAuth auth;
  auth.bearer = [] { return std::optional<std::string>("t"); };
  ResourcePoller poller(
      loop, http, PolledResource{"cal", "/me/events?from={now}", 60s, 1}, kBase, auth, jitter,
      [] { return kDefaultMaxGraphBytes; }, sink);
  http.answer(http_answer(200, "{}"));
  poller.start_now();
  loop.run_once(0ms);
  REQUIRE(http.requests.size() == 1);
  CHECK(http.requests[0].url == kBase + "/me/events?from=2026-11-26T19%3A00%3A00Z");
}
