#include <doctest/doctest.h>

#include <vector>

#include "fake_clock.h"
#include "mqtt/mqtt_session.h"

using namespace g2m;

namespace {
// A broker connection under the test's control: publish succeeds only while "connected".
class FakeMqttClient final : public MqttClient {
 public:
  Handlers handlers;
  bool up = false;
  int refuse_next = 0;  // publishes refused while connected (a full client buffer)
  std::vector<OutgoingMessage> sent;
  std::vector<std::string> subscribed;

  void start(Handlers h) override { handlers = std::move(h); }
  void reconnect() override {}
  bool publish(const OutgoingMessage& m) override {
    if (!up) return false;
    if (refuse_next > 0) {
      --refuse_next;
      return false;
    }
    sent.push_back(m);
    return true;
  }
  void subscribe(const std::string& filter, int) override { subscribed.push_back(filter); }
  void stop(Millis) override { up = false; }
  int version() const override { return 5; }
};

struct World {
  test::FakeClock clock;
  test::FakePoller poller{clock};
  EventLoop loop{clock, poller};
  Logger log{LogLevel::error, [](LogLevel, std::string_view) {}};
  FakeMqttClient client;
  MqttSession session{loop, client, log};
  World() {
    session.start([](MqttMessage) {}, {"b/bridge/request/#"});
  }
  void connect() {
    client.up = true;
    client.handlers.connected();  // posts to the loop
    loop.run_once(Millis(0));
  }
};

OutgoingMessage event(int n) {
  OutgoingMessage m;
  m.topic = "b/a/events";
  m.payload = std::to_string(n);
  return m;
}
}  // namespace

TEST_CASE("mqtt session: at most 1,000 messages wait for the broker, oldest dropped first") {
  World w;
  for (int i = 0; i < 1500; ++i) w.session.send(event(i));
  CHECK(w.session.queued() == MqttSession::kMaxQueued);
  CHECK(w.session.dropped() == 500);
  w.connect();
  REQUIRE(w.client.sent.size() == 1000);
  CHECK(w.client.sent.front().payload == "500");
  CHECK(w.client.sent.back().payload == "1499");
  CHECK(w.session.queued() == 0);
}

TEST_CASE("mqtt session: after a reconnection retained values go out first, then queued events") {
  World w;
  w.session.set_retained("b/bridge/state", R"({"state":"online"})");
  w.session.set_retained("b/a/auth/code", "");
  w.session.send(event(1));
  w.connect();
  REQUIRE(w.client.sent.size() == 3);
  CHECK(w.client.sent[0].topic == "b/bridge/state");
  CHECK(w.client.sent[0].retain);
  CHECK(w.client.sent[1].topic == "b/a/auth/code");
  CHECK(w.client.sent[1].payload.empty());
  CHECK(w.client.sent[2].topic == "b/a/events");
  CHECK(w.client.subscribed == std::vector<std::string>{"b/bridge/request/#"});
}

TEST_CASE("mqtt session: a publish the client refuses while connected is retried, not lost") {
  World w;
  w.connect();
  w.client.refuse_next = 3;
  w.session.send(event(1));
  w.session.set_retained("b/a/auth/state", "{}");
  CHECK(w.client.sent.empty());
  for (int i = 0; i < 10 && w.client.sent.size() < 2; ++i) w.loop.run_once(Millis(200));
  REQUIRE(w.client.sent.size() == 2);
  CHECK(w.client.sent[0].topic == "b/a/auth/state");  // retained values lead
  CHECK(w.client.sent[1].payload == "1");
}

TEST_CASE("mqtt session: the code's message expiry is the seconds it has left when published") {
  World w;
  w.session.set_retained("b/a/auth/code", "{}", w.clock.system() + Seconds(900));
  w.clock.advance(Seconds(100));
  w.connect();
  REQUIRE(w.client.sent.size() == 1);
  CHECK(w.client.sent[0].expiry_seconds == 800u);
}
