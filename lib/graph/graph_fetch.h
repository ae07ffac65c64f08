#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "http/http.h"

namespace g2m {

// The outcome of one Graph GET (all its pages).
struct GraphResult {
  std::optional<long> status;  // HTTP status of the last answer; nullopt when none came
  std::string body;            // the body to publish/return (pages merged when max_pages > 1)
  bool body_is_json = false;
  std::string
      code;  // Graph's error.code, or network_error/timeout/tls_error/invalid_json/too_large/...
  std::string message;  // Graph's error.message or our sentence
  std::optional<Seconds> retry_after;

  bool success() const { return status && *status >= 200 && *status < 300 && body_is_json; }
};

struct GraphAuth {
  // The access token to send, revealed only when building the request; nullopt: signed out.
  std::function<std::optional<std::string>()> bearer;
  // Refreshes the tokens (or waits for the refresh under way) after a 401, then calls back.
  std::function<void(std::function<void(bool ok)>)> refresh;
};

// mqtt.max_message_size's default (CONTRACT §3).
inline constexpr std::size_t kDefaultMaxGraphBytes = 1024 * 1024;

// What to GET: `base + path`, up to `max_pages` pages, and at most `max_bytes` of body (the
// largest payload the MQTT session can publish: CONTRACT §1 graph/R `too_large`).
struct GraphGet {
  std::string base;
  std::string path;
  int max_pages = 1;
  std::size_t max_bytes = kDefaultMaxGraphBytes;
};

// GET `base + path`, following @odata.nextLink up to `max_pages` (same origin as `base` only),
// refreshing once on a 401 and retrying once (CONTRACT §6 Tokens, §3 max_pages). A body larger
// than `max_bytes` fails with code `too_large`; a paged merge stops at the first page that would
// make it so, so nothing larger is ever held. `clock` dates a Retry-After given as an HTTP date.
void graph_fetch(Http& http, const Clock& clock, GraphGet get, GraphAuth auth,
                 std::function<void(GraphResult)> done);

// scheme://host[:port] of a URL.
std::string url_origin(const std::string& url);

}  // namespace g2m
