#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/http.h"

namespace g2m::test {

// An Http that plays back scripted answers in order. Callbacks run from run(), never inside
// send(), as with the real loop; when the answers run out a transfer fails (network_error), so
// every exchange ends. Shared by the unit tests and the Graph fuzz target.
class ScriptedHttp final : public Http {
 public:
  ScriptedHttp() = default;
  explicit ScriptedHttp(std::deque<HttpResponse> answers) : answers_(std::move(answers)) {}

  void answer(HttpResponse response) { answers_.push_back(std::move(response)); }

  RequestId send(HttpRequest request, Callback callback) override {
    requests.push_back(request);
    const RequestId id = requests.size();
    pending_.push_back([this, id, cb = std::move(callback)] {
      for (const RequestId c : cancelled) {
        if (c == id) return;
      }
      HttpResponse r;
      if (answers_.empty()) {
        r.error = TransportError::network;
        r.error_message = "no more scripted answers";
      } else {
        r = std::move(answers_.front());
        answers_.pop_front();
      }
      delivered.push_back(r.body);
      cb(std::move(r));
    });
    return id;
  }
  void cancel(RequestId id) override { cancelled.push_back(id); }

  // Runs a task with the answers (a refresh that completes later, say).
  void post(std::function<void()> task) { pending_.push_back(std::move(task)); }

  // Delivers what is pending, including what the callbacks send meanwhile. False when it was
  // still going after `max_steps`: an exchange that never ends is a bug, not a reason to spin.
  bool run(int max_steps = 1000) {
    for (int steps = 0; !pending_.empty(); ++steps) {
      if (steps >= max_steps) return false;
      auto task = std::move(pending_.front());
      pending_.pop_front();
      task();
    }
    return true;
  }

  bool idle() const { return pending_.empty(); }
  std::size_t answers_left() const { return answers_.size(); }

  std::vector<HttpRequest> requests;
  std::vector<std::string> delivered;  // the bodies answered, in order
  std::vector<RequestId> cancelled;

 private:
  std::deque<HttpResponse> answers_;
  std::deque<std::function<void()>> pending_;
};

// An HTTP answer with a status, a body and optionally a Retry-After header.
inline HttpResponse http_answer(long status, std::string body,
                                std::optional<std::string> retry_after = std::nullopt) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "application/json";
  r.retry_after = std::move(retry_after);
  return r;
}

// A transfer that got no HTTP answer.
inline HttpResponse transport_failure(TransportError error) {
  HttpResponse r;
  r.error = error;
  r.error_message = "scripted transport failure";
  return r;
}

}  // namespace g2m::test
