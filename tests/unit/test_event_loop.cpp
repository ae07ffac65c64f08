#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "fake_clock.h"
#include "loop/event_loop.h"

using namespace g2m;

TEST_CASE("event loop: timers run in deadline order, on a fake clock") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  std::vector<int> order;
  loop.after(Seconds(10), [&] { order.push_back(2); });
  loop.after(Seconds(5), [&] { order.push_back(1); });
  loop.after(Seconds(15), [&] {
    order.push_back(3);
    loop.stop();
  });
  loop.run();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("event loop: a cancelled timer never runs, also when cancelled by a timer due together") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  bool ran = false;
  EventLoop::TimerId second = 0;
  loop.after(Seconds(1), [&] { loop.cancel(second); });
  second = loop.after(Seconds(1), [&] { ran = true; });
  loop.after(Seconds(2), [&] { loop.stop(); });
  loop.run();
  CHECK_FALSE(ran);
}

TEST_CASE("event loop: posted tasks run on the next turn") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  int runs = 0;
  loop.post([&] { ++runs; });
  loop.run_once(Millis(0));
  CHECK(runs == 1);
}

TEST_CASE("event loop: a Timer re-armed replaces its deadline and cancels on destruction") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  int fired = 0;
  {
    Timer t(loop);
    t.start_after(Seconds(5), [&] { fired += 1; });
    t.start_after(Seconds(10), [&] { fired += 10; });
    CHECK(loop.timer_count() == 1);
  }
  CHECK(loop.timer_count() == 0);
  Timer kept(loop);
  kept.start_after(Seconds(3), [&] { fired += 100; });
  loop.after(Seconds(4), [&] { loop.stop(); });
  loop.run();
  CHECK(fired == 100);
  CHECK_FALSE(kept.active());
}

namespace {
// A poller whose poll() runs an "HTTP completion" that starts a timer, as CurlHttp does.
class CompletingPoller final : public Poller {
 public:
  explicit CompletingPoller(test::FakeClock& clock) : clock_(clock) {}
  std::function<void()> on_poll;
  bool woken = false;
  Millis waited{0};
  void poll(Millis timeout) override {
    if (on_poll) std::exchange(on_poll, nullptr)();
    waited = woken ? Millis(0) : timeout;
    clock_.advance(waited);
    woken = false;
  }
  void wake() override { woken = true; }

 private:
  test::FakeClock& clock_;
};
}  // namespace

TEST_CASE("event loop: a timer started by an I/O completion shortens the wait in progress") {
  test::FakeClock clock;
  CompletingPoller poller(clock);
  EventLoop loop(clock, poller);
  bool fired = false;
  poller.on_poll = [&] { loop.after(Seconds(1), [&] { fired = true; }); };
  loop.run_once(Millis(60'000));
  CHECK(poller.waited == Millis(0));  // woken instead of sleeping a minute
  loop.run_once(Millis(60'000));
  CHECK(poller.waited == Seconds(1));
  CHECK(fired);
}

TEST_CASE("event loop: deferred work runs after due timers, in order, and a cancelled task never") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  std::vector<std::string> order;
  loop.defer([&] { order.push_back("deferred 1"); });
  const auto cancelled = loop.defer([&] { order.push_back("cancelled"); });
  loop.defer([&] { order.push_back("deferred 2"); });
  loop.after(Millis(0), [&] { order.push_back("timer"); });
  loop.cancel_deferred(cancelled);
  const SteadyTime start = clock.steady();
  loop.run_once(Millis(1000));
  CHECK(order == std::vector<std::string>{"timer", "deferred 1", "deferred 2"});
  CHECK(clock.steady() == start);  // no waiting with deferred work
}

TEST_CASE(
    "event loop: a poll that falls due during a burst of deferred work runs before the rest of "
    "it") {
  // 1,000 approvals handled at 0.5 ms each would hold the loop for half a second; the loop
  // looks at its timers between tasks and at least every kDeferredSlice.
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  const SteadyTime start = clock.steady();
  int done = 0;
  std::optional<int> done_when_polled;
  for (int i = 0; i < 1000; ++i) {
    loop.defer([&] {
      clock.advance(Millis(1));  // each task takes 1 ms
      ++done;
    });
  }
  loop.after(Millis(10), [&] { done_when_polled = done; });
  while (done < 1000) loop.run_once(Millis(1000));
  REQUIRE(done_when_polled.has_value());
  CHECK(*done_when_polled == 10);  // the timer ran as soon as it was due, not after 1,000 tasks
  CHECK(clock.steady() - start == Millis(1000));  // and nothing waited in between
}

TEST_CASE("event loop: a Deferred slot replaces its task and cancels on destruction") {
  test::FakeClock clock;
  test::FakePoller poller(clock);
  EventLoop loop(clock, poller);
  std::vector<int> ran;
  {
    Deferred slot(loop);
    slot.start([&] { ran.push_back(1); });
    slot.start([&] { ran.push_back(2); });
    CHECK(slot.active());
    loop.run_once(Millis(0));
    CHECK_FALSE(slot.active());
    slot.start([&] { ran.push_back(3); });
  }
  loop.run_once(Millis(0));
  CHECK(ran == std::vector<int>{2});
}

TEST_CASE("event loop: work deferred by an I/O completion cuts the wait in progress short") {
  // `graph2mqtt login` had nothing else to do after the approving answer: without the wake-up
  // its loop slept out the minute before handling it.
  test::FakeClock clock;
  CompletingPoller poller(clock);
  EventLoop loop(clock, poller);
  bool ran = false;
  poller.on_poll = [&] { loop.defer([&] { ran = true; }); };
  loop.run_once(Millis(60'000));
  CHECK(poller.waited == Millis(0));
  CHECK(ran);
}
