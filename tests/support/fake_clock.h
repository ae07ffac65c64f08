#pragma once

#include "common/clock.h"
#include "loop/event_loop.h"

namespace g2m::test {

// A clock that moves only when told: a 15-minute sign-in runs in microseconds.
class FakeClock final : public Clock {
 public:
  SteadyTime steady() const override { return steady_; }
  SystemTime system() const override { return system_; }
  void advance(Millis d) {
    steady_ += d;
    system_ += d;
  }

 private:
  SteadyTime steady_{std::chrono::hours(1000)};
  SystemTime system_{std::chrono::sys_days{std::chrono::year{2026} / 11 / 26} +
                     std::chrono::hours(19)};
};

// A poller that never blocks: "waiting" moves the fake clock to the next timer instead.
class FakePoller final : public Poller {
 public:
  explicit FakePoller(FakeClock& clock) : clock_(clock) {}
  void poll(Millis timeout) override {
    if (timeout.count() > 0) clock_.advance(timeout);
  }
  void wake() override {}

 private:
  FakeClock& clock_;
};

}  // namespace g2m::test
