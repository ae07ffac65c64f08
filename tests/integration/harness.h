// The integration-test harness: real processes on loopback (Mosquitto, the simulated identity
// platform, the agent), driven and observed over MQTT and HTTP the way a display would.
//
//   g2m::test::TempDir tmp;
//   auto pki = g2m::test::make_pki(tmp / "pki");
//   g2m::test::Mosquitto broker;
//   g2m::test::Simulator sim(pki);
//   g2m::test::MqttProbe display(broker);
//   g2m::test::Agent agent(g2m::test::agent_config(broker, sim, pki, accounts_yaml));
//   display.wait_for_json("graph2mqtt/bridge/state",
//                         [](auto& v) { return g2m::test::json_str(v, "state") == "online"; });
#pragma once

#include "harness_agent.h"      // IWYU pragma: export
#include "harness_mosquitto.h"  // IWYU pragma: export
#include "harness_mqtt.h"       // IWYU pragma: export
#include "harness_process.h"    // IWYU pragma: export
#include "harness_simulator.h"  // IWYU pragma: export
#include "harness_util.h"       // IWYU pragma: export
