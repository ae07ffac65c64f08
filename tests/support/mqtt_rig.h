#pragma once

#include <string_view>

#include "common/logger.h"
#include "fake_clock.h"
#include "fake_mqtt_client.h"
#include "loop/event_loop.h"
#include "mqtt/mqtt_session.h"

namespace g2m::test {

// An MqttSession on the fake clock over a broker with room: what the tests of the parts that
// publish through a session stand on.
struct MqttRig {
  FakeClock clock;
  FakePoller poller{clock};
  EventLoop loop{clock, poller};
  Logger log{LogLevel::error, [](LogLevel, std::string_view) {}};
  ConnectedMqttClient client;
  MqttSession session{loop, client, log};
};

}  // namespace g2m::test
