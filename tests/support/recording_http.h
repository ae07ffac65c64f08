#pragma once

#include <deque>
#include <string>
#include <utility>

#include "http/http.h"

namespace g2m::test {

// An Http whose requests wait until the test answers them, oldest first: a test sees exactly
// what was sent, and when, and decides what the platform says.
class RecordingHttp final : public Http {
 public:
  struct Sent {
    RequestId id;
    HttpRequest request;
    Callback callback;
  };

  RequestId send(HttpRequest request, Callback callback) override {
    const RequestId id = ++next_id_;
    all_.push_back(request);
    pending_.push_back(Sent{id, std::move(request), std::move(callback)});
    return id;
  }
  void cancel(RequestId id) override {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->id == id) {
        pending_.erase(it);
        ++cancelled_;
        return;
      }
    }
  }

  bool has_pending() const { return !pending_.empty(); }
  std::size_t pending_count() const { return pending_.size(); }
  const HttpRequest& oldest() const { return pending_.front().request; }
  // Answers the oldest request (its callback runs now, as the loop would run it).
  void answer(HttpResponse response) {
    Sent s = std::move(pending_.front());
    pending_.pop_front();
    s.callback(std::move(response));
  }
  void answer(long status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = "application/json";
    answer(std::move(r));
  }
  void fail(TransportError error) {
    HttpResponse r;
    r.error = error;
    r.error_message = "scripted transport failure";
    answer(std::move(r));
  }
  const std::deque<HttpRequest>& all() const { return all_; }
  int cancelled() const { return cancelled_; }

 private:
  RequestId next_id_ = 0;
  std::deque<Sent> pending_;
  std::deque<HttpRequest> all_;
  int cancelled_ = 0;
};

}  // namespace g2m::test
