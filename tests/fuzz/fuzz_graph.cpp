// Fuzzes graph_fetch(): Graph's answers (status, Retry-After, body) to one GET and the pages it
// follows, through a fake Http that plays back answers taken from the input.
//
// Input:
//   line 1   max_pages (a number; clamped to 1..50 as config does), then option letters:
//              r  a 401 is answered by a refresh that succeeds    R  ... that fails
//              s  the account is signed out (no bearer token)
//              a  the base is an API origin with no path (provider oidc: identity.api)
//              m  bodies are capped at 64 bytes (too_large), not 1 MiB
//   then one answer per block, blocks separated by a line "---":
//     first line  the HTTP status, optionally followed by " " and a Retry-After value; or one of
//                 "network", "timeout", "tls" for a failed transfer
//     the rest    the body
// When the answers run out the fake (tests/support/scripted_http.h) fails the transfer, so every
// fetch ends.

#include <algorithm>
#include <charconv>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "../support/fake_clock.h"
#include "../support/scripted_http.h"
#include "fuzz_support.h"
#include "graph/graph_fetch.h"
#include "json/json.h"

namespace {

using g2m::fuzz::require;

struct Options {
  int max_pages = 1;
  bool refresh = false;
  bool refresh_ok = false;
  bool signed_out = false;
  bool api_base = false;
  std::size_t max_bytes = 1024 * 1024;
};

Options parse_options(std::string_view line) {
  Options o;
  long long n = 1;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
  if (ec == std::errc()) o.max_pages = static_cast<int>(std::clamp(n, 1LL, 50LL));
  for (const char c : std::string_view(end, line.data() + line.size() - end)) {
    if (c == 'r' || c == 'R') {
      o.refresh = true;
      o.refresh_ok = c == 'r';
    }
    if (c == 's') o.signed_out = true;
    if (c == 'a') o.api_base = true;
    if (c == 'm') o.max_bytes = 64;
  }
  return o;
}

g2m::HttpResponse parse_answer(std::string_view block) {
  g2m::HttpResponse r;
  const std::string_view head = g2m::fuzz::take_line(block);
  r.body = std::string(block);
  r.content_type = "application/json";
  if (head == "network" || head == "timeout" || head == "tls") {
    r.error = head == "network"   ? g2m::TransportError::network
              : head == "timeout" ? g2m::TransportError::timeout
                                  : g2m::TransportError::tls;
    r.error_message = "scripted transport failure";
    r.body.clear();
    return r;
  }
  long status = 200;
  const auto [end, ec] = std::from_chars(head.data(), head.data() + head.size(), status);
  if (ec == std::errc()) r.status = status;
  const std::string_view after(end, head.data() + head.size() - end);
  if (!after.empty() && after.front() == ' ') r.retry_after = std::string(after.substr(1));
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest = g2m::fuzz::as_text(data, size);
  const Options opt = parse_options(g2m::fuzz::take_line(rest));
  std::deque<g2m::HttpResponse> answers;
  while (!rest.empty() && answers.size() < 64) {
    const auto sep = rest.find("\n---\n");
    answers.push_back(parse_answer(rest.substr(0, sep)));
    rest = sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 5);
  }
  g2m::test::ScriptedHttp http(std::move(answers));
  const g2m::test::FakeClock clock;
  const std::string base =
      opt.api_base ? "https://api.example.com" : "https://graph.microsoft.com/v1.0";
  const std::string origin = g2m::url_origin(base);
  std::string token = "eyJ0eXAiOiJKV1QifQ.first";
  g2m::GraphAuth auth;
  auth.bearer = [&]() -> std::optional<std::string> {
    if (opt.signed_out) return std::nullopt;
    return token;
  };
  int refreshes = 0;
  if (opt.refresh) {
    auth.refresh = [&](std::function<void(bool)> done) {
      ++refreshes;
      http.post([&, done = std::move(done)] {
        if (opt.refresh_ok) token = "eyJ0eXAiOiJKV1QifQ.second";
        done(opt.refresh_ok);
      });
    };
  }
  int calls = 0;
  g2m::GraphResult result;
  g2m::GraphGet get;
  get.base = base;
  get.path = "/me/messages?$select=subject&$top=2";
  get.max_pages = opt.max_pages;
  get.max_bytes = opt.max_bytes;
  g2m::graph_fetch(http, clock, get, auth, [&](g2m::GraphResult r) {
    ++calls;
    result = std::move(r);
  });
  require(http.run(), "a fetch ends after a bounded number of steps");
  require(http.cancelled.empty(), "graph_fetch never cancels");

  require(calls == 1, "the done callback runs exactly once");
  require(refreshes <= 1, "a fetch refreshes at most once");
  require(http.requests.size() <= static_cast<std::size_t>(opt.max_pages) + 1,
          "at most max_pages requests, plus one retry after a refresh");
  for (const auto& request : http.requests) {
    require(request.method == "GET", "Graph is only read");
    require(g2m::url_origin(request.url) == origin, "every request stays on the Graph origin");
    const auto bearer = std::count_if(
        request.headers.begin(), request.headers.end(),
        [](const std::string& h) { return h.rfind("Authorization: Bearer ", 0) == 0; });
    require(bearer == 1, "every request carries one bearer token");
  }
  if (opt.signed_out) require(http.requests.empty(), "nothing is sent while signed out");
  if (!result.status) require(!result.code.empty(), "a fetch without an answer says why");
  if (result.retry_after) {
    require(result.retry_after->count() >= 0 && *result.retry_after <= g2m::Seconds(3600),
            "Retry-After is clamped to 0..1 h");
  }
  if (result.success()) {
    require(g2m::json::parse(result.body).has_value(), "a successful body is JSON");
    require(result.body.size() <= opt.max_bytes, "a successful body fits the size cap");
    if (opt.max_pages <= 1) {
      require(!http.delivered.empty() && result.body == http.delivered.back(),
              "one page is published as the bytes received");
    }
  }
  return 0;
}
