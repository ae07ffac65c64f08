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
