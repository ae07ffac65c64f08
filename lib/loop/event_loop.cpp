#include "loop/event_loop.h"

#include <algorithm>

namespace g2m {

EventLoop::EventLoop(const Clock& clock, Poller& poller)
    : clock_(clock), poller_(poller), now_(clock.steady()) {}

EventLoop::TimerId EventLoop::at(SteadyTime when, Task task) {
  const TimerId id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(task));
  timers_by_id_.emplace(id, when);
  // An HTTP answer handled inside poll() may start a timer earlier than the wait poll() is about
  // to do (it computed it before): cut that wait short.
  if (polling_ && when < waiting_until_) poller_.wake();
  return id;
}

void EventLoop::cancel(TimerId id) {
  const auto it = timers_by_id_.find(id);
  if (it == timers_by_id_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timers_by_id_.erase(it);
}

void EventLoop::post(Task task) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(task));
  }
  poller_.wake();
}

EventLoop::TimerId EventLoop::defer(Task task) {
  const TimerId id = next_id_++;
  deferred_.emplace(id, std::move(task));
  // Deferred from an I/O completion inside poll(): the wait it is in would hold the task back.
  if (polling_) poller_.wake();
  return id;
}

void EventLoop::stop() {
  {
    std::lock_guard lock(posted_mutex_);
    stopping_ = true;
  }
  poller_.wake();
}

void EventLoop::run() {
  for (;;) {
    {
      std::lock_guard lock(posted_mutex_);
      if (stopping_) return;
    }
    run_once(Millis(60'000));
  }
}

void EventLoop::run_once(Millis max_wait) {
  now_ = clock_.steady();
  Millis wait = max_wait;
  {
    std::lock_guard lock(posted_mutex_);
    if (!posted_.empty() || stopping_) wait = Millis(0);
  }
  if (!deferred_.empty()) wait = Millis(0);
  if (!timers_.empty()) {
    const auto until = std::chrono::ceil<Millis>(timers_.begin()->first.first - now_);
    wait = std::clamp(until, Millis(0), wait);
  }
  waiting_until_ = now_ + wait;
  polling_ = true;
  poller_.poll(wait);  // HTTP completions run inside, on this thread
  polling_ = false;
  now_ = clock_.steady();
  run_posted();
  run_due();
  run_deferred();
}

void EventLoop::run_deferred() {
  const SteadyTime start = clock_.steady();
  while (!deferred_.empty()) {
    const auto first = deferred_.begin();
    Task task = std::move(first->second);
    deferred_.erase(first);
    task();
    const SteadyTime now = clock_.steady();
    if (now - start >= kDeferredSlice) return;
    if (!timers_.empty() && timers_.begin()->first.first <= now) return;
    const std::lock_guard lock(posted_mutex_);
    if (!posted_.empty()) return;
  }
}

void EventLoop::run_posted() {
  std::vector<Task> tasks;
  {
    std::lock_guard lock(posted_mutex_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void EventLoop::run_due() {
  // Only timers due at the start of this pass run now; timers they add for "now" run next turn,
  // so a zero-delay timer chain cannot starve I/O. A timer cancelled by an earlier callback of
  // the same pass is skipped: it has left timers_by_id_.
  std::vector<std::pair<TimerId, Task>> batch;
  while (!timers_.empty() && timers_.begin()->first.first <= now_) {
    auto node = timers_.extract(timers_.begin());
    batch.emplace_back(node.key().second, std::move(node.mapped()));
  }
  for (auto& [id, task] : batch) {
    if (timers_by_id_.erase(id) == 0) continue;
    task();
  }
}

void Timer::start_at(SteadyTime when, EventLoop::Task task) {
  cancel();
  deadline_ = when;
  id_ = loop_->at(when, std::move(task));
}

void Timer::cancel() {
  if (id_ != 0) loop_->cancel(id_);
  id_ = 0;
}

}  // namespace g2m
