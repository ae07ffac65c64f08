#pragma once

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
  std::string code;     // Graph's error.code, or network_error/timeout/tls_error/invalid_json/...
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

// GET `base + path`, following @odata.nextLink up to `max_pages` (same origin as `base` only),
// refreshing once on a 401 and retrying once (CONTRACT §6 Tokens, §3 max_pages).
void graph_fetch(Http& http, const std::string& base, const std::string& path, int max_pages,
                 GraphAuth auth, std::function<void(GraphResult)> done);

// scheme://host[:port] of a URL.
std::string url_origin(const std::string& url);

}  // namespace g2m
