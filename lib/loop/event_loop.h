#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace g2m {

// What the loop blocks on between turns. The HTTP client implements it with
// curl_multi_poll/curl_multi_wakeup, so one wait covers sockets, timers and wake-ups.
class Poller {
 public:
  virtual ~Poller() = default;
  // Waits up to `timeout` for I/O or a wake(), then does the I/O that is ready.
  virtual void poll(Millis timeout) = 0;
  // Thread-safe: makes a poll() in progress return now.
  virtual void wake() = 0;
};

// One thread owns all state: timers and posted tasks run here, one at a time. Other threads
// (Paho callbacks, the signal thread) only post() and wake the loop.
class EventLoop {
 public:
  using Task = std::function<void()>;
  using TimerId = std::uint64_t;

  EventLoop(const Clock& clock, Poller& poller);

  TimerId at(SteadyTime when, Task task);
  TimerId after(Millis delay, Task task) { return at(now_ + delay, std::move(task)); }
  void cancel(TimerId id);
  bool pending(TimerId id) const { return timers_by_id_.count(id) != 0; }

  // Thread-safe.
  void post(Task task);

  // Loop thread only: work without a deadline of its own (handling an approved sign-in: the
  // token file, /me, a dozen publishes). It runs after due timers and posted tasks, in slices of
  // at most kDeferredSlice between which the loop looks at timers and I/O again, so a burst of
  // it (1,000 approvals in one second) never holds back a token poll that is due. FIFO.
  TimerId defer(Task task);
  void cancel_deferred(TimerId id) { deferred_.erase(id); }
  bool deferred(TimerId id) const { return deferred_.count(id) != 0; }
  static constexpr Millis kDeferredSlice{2};
  void stop();

  // Runs until stop(). Each turn samples "now" once (as mosquitto does).
  void run();
  // One turn: waits at most `max_wait` (bounded by the next timer), runs what is due.
  void run_once(Millis max_wait);

  // "Now" as of the start of this turn.
  SteadyTime now() const { return now_; }
  const Clock& clock() const { return clock_; }
  std::size_t timer_count() const { return timers_.size(); }

 private:
  void run_due();
  void run_posted();
  void run_deferred();

  const Clock& clock_;
  Poller& poller_;
  SteadyTime now_;
  bool polling_ = false;
  SteadyTime waiting_until_{};
  TimerId next_id_ = 1;
  std::map<std::pair<SteadyTime, TimerId>, Task> timers_;
  std::unordered_map<TimerId, SteadyTime> timers_by_id_;
  std::map<TimerId, Task> deferred_;  // by id: in the order deferred

  std::mutex posted_mutex_;
  std::vector<Task> posted_;
  bool stopping_ = false;  // guarded by posted_mutex_
};

// A timer slot owned by an object: starting it again replaces the old deadline, and it is
// cancelled when the owner goes away, so no callback ever reaches a dead object.
class Timer {
 public:
  explicit Timer(EventLoop& loop) : loop_(&loop) {}
  ~Timer() { cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start_at(SteadyTime when, EventLoop::Task task);
  void start_after(Millis delay, EventLoop::Task task) {
    start_at(loop_->now() + delay, std::move(task));
  }
  void cancel();
  bool active() const { return id_ != 0 && loop_->pending(id_); }
  SteadyTime deadline() const { return deadline_; }

 private:
  EventLoop* loop_;
  EventLoop::TimerId id_ = 0;
  SteadyTime deadline_{};
};

// A deferred task owned by an object (see EventLoop::defer): starting it again replaces the
// waiting task, and it is cancelled when the owner goes away.
class Deferred {
 public:
  explicit Deferred(EventLoop& loop) : loop_(&loop) {}
  ~Deferred() { cancel(); }
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  void start(EventLoop::Task task) {
    cancel();
    id_ = loop_->defer(std::move(task));
  }
  void cancel() {
    if (id_ != 0) loop_->cancel_deferred(id_);
    id_ = 0;
  }
  bool active() const { return id_ != 0 && loop_->deferred(id_); }

 private:
  EventLoop* loop_;
  EventLoop::TimerId id_ = 0;
};

}  // namespace g2m
