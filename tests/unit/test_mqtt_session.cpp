#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fake_clock.h"
#include "fake_mqtt_client.h"
#include "mqtt/mqtt_session.h"

using namespace g2m;

namespace {
// A broker connection under the test's control: publish succeeds only while "connected", and the
// test acknowledges messages when it wants (as a broker's PUBACK would).
using test::FakeMqttClient;

struct World {
  test::FakeClock clock;
  test::FakePoller poller{clock};
  EventLoop loop{clock, poller};
  std::vector<std::string> logged;
  Logger log{LogLevel::info,
             [this](LogLevel, std::string_view line) { logged.emplace_back(line); }};
  FakeMqttClient client;
  std::unique_ptr<MqttSession> session_ptr = std::make_unique<MqttSession>(loop, client, log);
  MqttSession& session = *session_ptr;

  World() {
    client.clock = &clock;
    session.start([](MqttMessage) {}, {"b/bridge/request/#"});
  }
  // The broker accepts the connection with these limits (its CONNACK).
  void connect(ConnectionLimits limits = {}) {
    client.up = true;
    client.handlers.connected(limits);  // posts to the loop
    turn();
  }
  void lose(int reason = 0, const std::string& cause = "") {
    client.up = false;
    client.handlers.connection_lost(cause, reason);
    turn();
  }
  // One loop turn without letting time pass: runs what the handlers posted.
  void turn() { loop.run_once(Millis(0)); }
  bool logged_line(const std::string& part) const {
    return std::any_of(logged.begin(), logged.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

OutgoingMessage event(int n, std::string topic = "b/a/events") {
  OutgoingMessage m;
  m.topic = std::move(topic);
  m.payload = std::to_string(n);
  return m;
}

std::vector<std::string> payloads(const std::vector<OutgoingMessage>& sent) {
  std::vector<std::string> out;
  for (const auto& m : sent) out.push_back(m.topic + "=" + m.payload);
  return out;
}

// The connection attempts' offsets from `since`, in seconds (whole or not).
std::vector<double> seconds_after(SteadyTime since, const std::vector<SteadyTime>& times) {
  std::vector<double> out;
  for (const auto t : times) {
    out.push_back(std::chrono::duration<double>(t - since).count());
  }
  return out;
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

TEST_CASE("mqtt session: a dropped message is logged, and the count when the broker is back") {
  World w;
  for (int i = 0; i < 1001; ++i) w.session.send(event(i));
  CHECK(w.session.dropped() == 1);
  CHECK(w.logged_line("the broker is unreachable; dropping the oldest"));
  CHECK_FALSE(w.logged_line("were dropped"));
  w.connect();
  CHECK(w.logged_line("mqtt: 1 events and replies were dropped before the broker could take them"));
}

TEST_CASE(
    "mqtt session: while connected, a burst larger than 1,000 behind a small window loses "
    "nothing") {
  // 1,000 sign-ins at once behind a stock Mosquitto's window of 20: 3,000 retained values go
  // first, and the replies and events wait for them.
  World w;
  w.connect(ConnectionLimits{20, std::nullopt});
  for (int i = 0; i < 3000; ++i)
    w.session.set_retained("b/a" + std::to_string(i) + "/auth/state", "{}");
  for (int i = 0; i < 2500; ++i) w.session.send(event(i));
  CHECK(w.session.queued() == 2500);
  while (!w.client.unacked.empty()) {
    w.client.ack(w.client.unacked.size());
    w.turn();
  }
  CHECK(w.session.dropped() == 0);
  REQUIRE(w.client.sent.size() == 5500);
  CHECK(w.client.most_unacked == 20);
  for (int i = 0; i < 2500; ++i) CHECK(w.client.sent[3000 + i].payload == std::to_string(i));
  CHECK_FALSE(w.logged_line("dropping"));
}

TEST_CASE("mqtt session: a broker that stops acknowledging cannot take all the memory") {
  World w;
  w.connect(ConnectionLimits{1, std::nullopt});
  w.session.send(event(0));  // in flight, never acknowledged
  OutgoingMessage big = event(1);
  big.payload.assign(1024 * 1024 - 20, 'x');  // 1 MiB with its topic
  const std::size_t fit = MqttSession::kMaxQueuedBytes / (big.payload.size() + big.topic.size());
  for (std::size_t i = 0; i < fit + 5; ++i) w.session.send(big);
  CHECK(w.session.queued() == fit);
  CHECK(w.session.dropped() == 5);
  CHECK(w.logged_line("the broker is not taking them; dropping the oldest"));
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

TEST_CASE(
    "mqtt session: a publish the client refuses with nothing in flight is retried, not lost") {
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

TEST_CASE(
    "mqtt session: under a Receive Maximum of 2 every message is delivered in order, never more "
    "than 2 unacknowledged, and each acknowledgement hands over the next one at once") {
  World w;
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) {
    const std::string topic = "b/a" + std::to_string(i) + "/auth/state";
    w.session.set_retained(topic, "{}");
    expected.push_back(topic + "={}");
  }
  for (int i = 0; i < 10; ++i) {
    w.session.send(event(i));
    expected.push_back("b/a/events=" + std::to_string(i));
  }
  ConnectionLimits limits;
  limits.receive_maximum = 2;
  w.connect(limits);
  CHECK(w.client.sent.size() == 2);
  CHECK(w.session.in_flight() == 2);
  const SteadyTime start = w.clock.steady();
  while (!w.client.unacked.empty()) {
    const std::size_t before = w.client.sent.size();
    w.client.ack();
    w.turn();  // no time passes: the acknowledgement alone hands over the next message
    if (before < expected.size()) CHECK(w.client.sent.size() == before + 1);
    CHECK(w.client.unacked.size() <= 2);
  }
  CHECK(w.clock.steady() == start);
  CHECK(w.client.most_unacked == 2);
  CHECK(payloads(w.client.sent) == expected);
  CHECK(w.session.queued() == 0);
  CHECK(w.session.in_flight() == 0);
  CHECK(w.loop.timer_count() == 0);  // nothing waits on a timer
}

TEST_CASE(
    "mqtt session: a retained topic set again while the window is full goes out once, with "
    "its latest value") {
  World w;
  ConnectionLimits limits;
  limits.receive_maximum = 1;
  w.connect(limits);
  w.session.set_retained("b/a/graph/me", "1");
  w.session.set_retained("b/a/graph/me", "2");
  w.session.set_retained("b/a/graph/me", "3");
  w.session.send(event(7));
  REQUIRE(w.client.sent.size() == 1);
  w.client.ack();
  w.turn();
  w.client.ack();
  w.turn();
  CHECK(payloads(w.client.sent) ==
        std::vector<std::string>{"b/a/graph/me=1", "b/a/graph/me=3", "b/a/events=7"});
}

TEST_CASE(
    "mqtt session: a message larger than mqtt.max_message_size or the broker's Maximum "
    "Packet Size is never handed over") {
  World w;
  w.client.max_message = 2048;
  CHECK(w.session.max_payload_size() == 2048);
  ConnectionLimits limits;
  limits.maximum_packet_size = 1500;
  w.connect(limits);
  CHECK(w.session.max_payload_size() == 1500 - MqttSession::kPacketOverhead);

  w.session.set_retained("b/a/graph/me", "small");
  OutgoingMessage big = event(0);
  big.payload.assign(3000, 'x');  // over max_message_size
  w.session.send(big);
  OutgoingMessage packet = event(0);
  packet.payload.assign(1490, 'y');  // under max_message_size, but the packet is over 1,500
  w.session.send(packet);
  w.session.set_retained("b/a/graph/me", std::string(1490, 'z'));  // refused: the old value stays
  OutgoingMessage fits = event(1);
  fits.payload.assign(1400, 'w');
  w.session.send(fits);

  REQUIRE(w.client.sent.size() == 2);
  CHECK(w.client.sent[0].payload == "small");
  CHECK(w.client.sent[1].payload == fits.payload);
  REQUIRE(w.session.retained_value("b/a/graph/me") != nullptr);
  CHECK(*w.session.retained_value("b/a/graph/me") == "small");
  CHECK(w.logged_line("not publishing 3000 bytes to b/a/events: mqtt.max_message_size is 2048"));
  CHECK(
      w.logged_line("not publishing 1490 bytes to b/a/events: the broker accepts packets of at "
                    "most 1500 bytes"));
  CHECK(w.session.queued() == 0);  // dropped, not waiting
}

TEST_CASE(
    "mqtt session: events the connection took with it unacknowledged are sent again after "
    "the reconnection, before newer ones") {
  World w;
  ConnectionLimits limits;
  limits.receive_maximum = 2;
  w.connect(limits);
  for (int i = 0; i < 4; ++i) w.session.send(event(i));
  REQUIRE(w.client.sent.size() == 2);
  w.client.ack();  // 0 is acknowledged, 1 is not when the connection drops
  w.client.unacked.clear();
  w.lose();
  w.session.send(event(4));
  w.client.sent.clear();
  limits.receive_maximum = 10;
  w.connect(limits);
  CHECK(payloads(w.client.sent) ==
        std::vector<std::string>{"b/a/events=1", "b/a/events=2", "b/a/events=3", "b/a/events=4"});
}

TEST_CASE(
    "mqtt session: an acknowledgement from an earlier connection does not widen the new "
    "window") {
  World w;
  ConnectionLimits limits;
  limits.receive_maximum = 1;
  w.connect(limits);
  w.session.send(event(0));
  const auto stale = w.client.unacked.front();
  w.client.unacked.clear();
  w.lose();
  w.connect(limits);  // event 0 again
  w.session.send(event(1));
  REQUIRE(w.client.sent.size() == 2);
  w.client.handlers.delivered(stale);  // a late PUBACK of the old connection
  w.turn();
  CHECK(w.client.sent.size() == 2);  // event 1 still waits for the current one's acknowledgement
  w.client.ack();
  w.turn();
  CHECK(w.client.sent.size() == 3);
}

TEST_CASE(
    "mqtt session: after losing the broker it tries again every second for 10 s, then backs "
    "off to at most 30 s between attempts") {
  World w;
  w.connect();
  // Every attempt fails at once (the broker is still down).
  w.client.on_reconnect = [&] { w.client.handlers.connect_failed("connection refused"); };
  const SteadyTime lost = w.clock.steady();
  w.lose();
  while (w.clock.steady() - lost < Seconds(200)) w.loop.run_once(Millis(60'000));
  const auto at = seconds_after(lost, w.client.reconnects);
  REQUIRE(at.size() >= 14);
  for (std::size_t i = 0; i < 10; ++i) CHECK(at[i] == doctest::Approx(i + 1.0));
  // Then growing gaps, never more than 30 s.
  std::vector<double> gaps;
  for (std::size_t i = 10; i < at.size(); ++i) gaps.push_back(at[i] - at[i - 1]);
  CHECK(gaps.front() > 1.0);
  CHECK(std::is_sorted(gaps.begin(), gaps.end()));
  CHECK(*std::max_element(gaps.begin(), gaps.end()) == doctest::Approx(30.0));
  CHECK(gaps.back() == doctest::Approx(30.0));
}

TEST_CASE("mqtt session: the broker that is down at start is tried every second as well") {
  World w;
  w.client.on_reconnect = [&] { w.client.handlers.connect_failed("connection refused"); };
  const SteadyTime start = w.clock.steady();
  w.client.handlers.connect_failed("connection refused");  // the first attempt, from start()
  w.turn();
  while (w.clock.steady() - start < Seconds(10)) w.loop.run_once(Millis(60'000));
  const auto at = seconds_after(start, w.client.reconnects);
  REQUIRE(at.size() == 10);
  CHECK(at.front() == doctest::Approx(1.0));
  CHECK(at.back() == doctest::Approx(10.0));
}

TEST_CASE("mqtt session: a new outage after a reconnection is tried every second again") {
  World w;
  w.connect();
  w.client.on_reconnect = [&] { w.client.handlers.connect_failed("connection refused"); };
  w.lose();
  while (w.client.reconnects.size() < 13) w.loop.run_once(Millis(60'000));  // into the backoff
  w.client.on_reconnect = [&] {
    w.client.up = true;
    w.client.handlers.connected(ConnectionLimits{});
  };
  // The next attempt succeeds.
  for (int i = 0; i < 5 && !w.session.connected(); ++i) w.loop.run_once(Millis(60'000));
  REQUIRE(w.session.connected());
  w.clock.advance(Seconds(10));  // a connection that lasts: the outage is over
  w.client.reconnects.clear();
  w.client.on_reconnect = [&] { w.client.handlers.connect_failed("connection refused"); };
  const SteadyTime lost = w.clock.steady();
  w.lose();
  while (w.client.reconnects.size() < 2) w.loop.run_once(Millis(60'000));
  const auto at = seconds_after(lost, w.client.reconnects);
  REQUIRE(at.size() == 2);
  CHECK(at[0] == doctest::Approx(1.0));
  CHECK(at[1] == doctest::Approx(2.0));
}

TEST_CASE(
    "mqtt session: thrown off because another client took its client id, it says so and "
    "waits 30 s before each attempt instead of fighting for the id") {
  World w;
  w.connect();
  const SteadyTime lost = w.clock.steady();
  w.lose(kReasonSessionTakenOver, "the broker disconnected us (reason 142)");
  CHECK(w.logged_line("another client connected with client id graph2mqtt-gw"));
  CHECK(w.logged_line("trying again in 30 s"));
  w.client.on_reconnect = [&] {
    w.client.up = true;
    w.client.handlers.connected(ConnectionLimits{});
  };
  while (w.client.reconnects.empty()) w.loop.run_once(Millis(60'000));
  w.turn();
  CHECK(seconds_after(lost, w.client.reconnects).front() == doctest::Approx(30.0));
  REQUIRE(w.session.connected());
  // Thrown off again at once: again 30 s, and failed attempts meanwhile stay at 30 s.
  w.client.reconnects.clear();
  w.client.on_reconnect = [&] { w.client.handlers.connect_failed("connection refused"); };
  const SteadyTime again = w.clock.steady();
  w.lose(kReasonSessionTakenOver, "the broker disconnected us (reason 142)");
  while (w.client.reconnects.size() < 3) w.loop.run_once(Millis(60'000));
  const auto at = seconds_after(again, w.client.reconnects);
  CHECK(at[0] == doctest::Approx(30.0));
  CHECK(at[1] == doctest::Approx(60.0));
  CHECK(at[2] == doctest::Approx(90.0));
}

TEST_CASE(
    "mqtt session: a broker that closes every connection right after accepting it (an id "
    "Mosquitto 2.0.11 gives to another client) is tried on the outage's cadence, and the "
    "log asks about the client id") {
  World w;
  w.connect();
  w.clock.advance(Seconds(60));
  // Each attempt connects, and the broker closes the connection at once.
  w.client.on_reconnect = [&] {
    w.client.up = true;
    w.client.handlers.connected(ConnectionLimits{});
    w.client.up = false;
    w.client.handlers.connection_lost("", 0);
  };
  const SteadyTime lost = w.clock.steady();
  w.lose();
  while (w.clock.steady() - lost < Seconds(100)) w.loop.run_once(Millis(60'000));
  const auto at = seconds_after(lost, w.client.reconnects);
  REQUIRE(at.size() >= 13);
  for (std::size_t i = 0; i < 10; ++i) CHECK(at[i] == doctest::Approx(i + 1.0));
  CHECK(at[10] == doctest::Approx(12.0));
  CHECK(at[11] == doctest::Approx(16.0));
  CHECK(at[12] == doctest::Approx(24.0));
  CHECK(w.logged_line("is another client using client id graph2mqtt-gw?"));
}

TEST_CASE("mqtt session: going away, it detaches its handlers from the client") {
  World w;
  w.connect();
  w.session.send(event(1));
  w.client.ack();  // posted to the loop, not yet run
  w.session_ptr.reset();
  CHECK(w.client.detached);
  CHECK_FALSE(w.client.handlers.delivered);
  w.turn();  // the posted acknowledgement finds the session gone and does nothing
}

TEST_CASE(
    "mqtt session: shutdown hands over everything still queued, offline state included, "
    "before it disconnects") {
  World w;
  ConnectionLimits limits;
  limits.receive_maximum = 2;
  w.connect(limits);
  for (int i = 0; i < 5; ++i) w.session.set_retained("b/a" + std::to_string(i) + "/auth/code", "");
  REQUIRE(w.client.sent.size() == 2);
  // The broker acknowledges those two (their report is not yet taken on the loop) and from now
  // on answers at once: shutdown() waits for acknowledgements itself, the loop does not run.
  w.client.ack(2);
  w.client.auto_ack = true;
  w.session.shutdown("b/bridge/state", Millis(5000));
  REQUIRE(w.client.sent.size() == 6);
  CHECK(w.client.sent.back().topic == "b/bridge/state");
  CHECK(w.client.sent.back().payload == R"({"state":"offline"})");
  CHECK_FALSE(w.client.up);  // stop() came after
}
