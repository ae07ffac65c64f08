#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/backoff.h"
#include "common/clock.h"
#include "graph/graph_fetch.h"
#include "http/http.h"
#include "loop/event_loop.h"

namespace g2m {

// One Graph resource as the poller sees it (a copy of the account's resource config, so graph
// needs nothing from config).
struct PolledResource {
  std::string name;
  std::string path;  // a path template: placeholders are expanded at every fetch
  Millis every{60'000};
  int max_pages = 1;
};

// Where a poller's outcomes go (the account publishes them on graph/R and events).
class ResourceSink {
 public:
  virtual ~ResourceSink() = default;
  // The body last published for `resource` (the retained value), nullptr when none: change
  // detection compares with it, so the poller keeps no second copy.
  virtual const std::string* published_body(const std::string& resource) const = 0;
  // A body to publish: the first after a start, a changed one, or any after a forced fetch.
  virtual void publish_body(const std::string& resource, const std::string& body) = 0;
  // A failed fetch (GraphResult::code is never empty here) and when the next one is.
  virtual void graph_error(const std::string& resource, const GraphResult& result,
                           Millis retry_in) = 0;
};

// Fetches one resource right after sign-in, then every `every` (minus up to 5 % jitter);
// reports a body when it changed (JSON equality); after a failure retries after Retry-After
// (429/503, at least 1 s) or with backoff from `every` capped at max(`every`, 1 h)
// (CONTRACT §1 graph/R, §6 Graph).
class ResourcePoller {
 public:
  ResourcePoller(EventLoop& loop, Http& http, PolledResource resource, std::string graph_base,
                 GraphAuth auth, Jitter& jitter, std::function<std::size_t()> max_bytes,
                 ResourceSink& sink);
  ResourcePoller(const ResourcePoller&) = delete;
  ResourcePoller& operator=(const ResourcePoller&) = delete;

  const std::string& name() const { return resource_.name; }

  // Fetches now, then on schedule.
  void start_now();
  // Starts polling if it is not already scheduled or under way (after a refresh that followed
  // a restart with an expired access token).
  void resume();
  // Stops; a fetch under way is dropped. The first fetch after the next start is published.
  void stop();
  // The time left in a Retry-After window, if one is open.
  std::optional<Seconds> retry_after_left() const;

  // A fetch now; `reply` (the refresh command's) gets the result, and a successful body is
  // published even when unchanged. Without a reply, nothing happens while a fetch is under way.
  void fetch(std::function<void(const GraphResult&)> reply = nullptr);

 private:
  void schedule(Millis delay);
  void on_result(const GraphResult& result, bool forced);
  bool changed(const std::string& body) const;

  EventLoop& loop_;
  Http& http_;
  PolledResource resource_;
  std::string graph_base_;
  GraphAuth auth_;
  Jitter& jitter_;
  std::function<std::size_t()> max_bytes_;  // asked at each fetch: the broker may change it
  ResourceSink& sink_;
  Timer timer_;
  int failures_ = 0;
  bool published_ = false;
  bool in_flight_ = false;
  std::uint64_t epoch_ = 0;
  std::optional<SteadyTime> retry_after_until_;
};

}  // namespace g2m
