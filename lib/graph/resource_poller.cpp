#include "graph/resource_poller.h"

#include <algorithm>

#include "graph/path_template.h"
#include "json/json.h"

namespace g2m {

ResourcePoller::ResourcePoller(EventLoop& loop, Http& http, PolledResource resource,
                               std::string graph_base, GraphAuth auth, Jitter& jitter,
                               std::function<std::size_t()> max_bytes, ResourceSink& sink)
    : loop_(loop),
      http_(http),
      resource_(std::move(resource)),
      graph_base_(std::move(graph_base)),
      auth_(std::move(auth)),
      jitter_(jitter),
      max_bytes_(std::move(max_bytes)),
      sink_(sink),
      timer_(loop) {}

void ResourcePoller::start_now() {
  failures_ = 0;
  schedule(Millis(0));
}

void ResourcePoller::resume() {
  if (!timer_.active() && !in_flight_) start_now();
}

void ResourcePoller::stop() {
  published_ = false;  // the first fetch after a (new) sign-in is always published
  timer_.cancel();
  ++epoch_;
  in_flight_ = false;
}

std::optional<Seconds> ResourcePoller::retry_after_left() const {
  if (!retry_after_until_) return std::nullopt;
  const auto now = loop_.now();
  if (now >= *retry_after_until_) return std::nullopt;
  return std::chrono::ceil<Seconds>(*retry_after_until_ - now);
}

void ResourcePoller::fetch(std::function<void(const GraphResult&)> reply) {
  if (in_flight_ && !reply) return;
  in_flight_ = true;
  const std::uint64_t epoch = epoch_;
  GraphGet get;
  get.base = graph_base_;
  get.path = expand_path_template(resource_.path, loop_.clock().system());
  get.max_pages = resource_.max_pages;
  get.max_bytes = max_bytes_();
  graph_fetch(http_, loop_.clock(), std::move(get), auth_,
              [this, epoch, reply](GraphResult result) {
                if (epoch != epoch_) return;  // tokens were lost meanwhile: drop it
                in_flight_ = false;
                on_result(result, reply != nullptr);
                if (reply) reply(result);
              });
}

void ResourcePoller::schedule(Millis delay) {
  timer_.start_after(delay, [this] { fetch(); });
}

bool ResourcePoller::changed(const std::string& body) const {
  // Equal bytes are equal JSON; otherwise compare as JSON.
  const std::string* previous = sink_.published_body(resource_.name);
  if (previous == nullptr || previous->empty()) return true;
  if (*previous == body) return false;
  const auto before = json::parse(*previous);
  const auto now = json::parse(body);
  return !before || !now || !(*before == *now);
}

void ResourcePoller::on_result(const GraphResult& result, bool forced) {
  const Millis every = resource_.every;
  if (result.success()) {
    failures_ = 0;
    retry_after_until_.reset();
    if (forced || !published_ || changed(result.body)) {
      sink_.publish_body(resource_.name, result.body);
    }
    published_ = true;
    // Up to 5 % jitter so many accounts with the same schedule spread out.
    const auto jitter =
        Millis(static_cast<long long>(static_cast<double>(every.count()) * 0.05 * jitter_.next()));
    schedule(every - jitter);
    return;
  }
  Millis delay;
  if (result.status && (*result.status == 429 || *result.status == 503) && result.retry_after) {
    delay = std::max<Millis>(Seconds(1), *result.retry_after);
    retry_after_until_ = loop_.now() + delay;
  } else {
    delay = retry_delay(failures_, every, std::max<Millis>(every, Seconds(3600)), jitter_);
  }
  GraphResult reported;  // without the body: an error body is never published
  reported.status = result.status;
  reported.code = result.code.empty() ? "invalid_json" : result.code;
  reported.message = result.message;
  reported.retry_after = result.retry_after;
  sink_.graph_error(resource_.name, reported, delay);
  schedule(delay);
}

}  // namespace g2m
