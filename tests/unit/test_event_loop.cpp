#include <doctest/doctest.h>

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
