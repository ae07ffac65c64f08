// Running as a service: SIGHUP reloads the configuration, SIGTERM stops cleanly.
#include <doctest/doctest.h>

#include <csignal>

#include "scenario.h"

using namespace g2m::test;

TEST_CASE("service: SIGHUP with a configuration that is not valid keeps the running one") {
  Scenario s;
  auto broken = s.config;
  broken.accounts = "kitchen:\n  client_id: not-a-guid\n";
  s.agent->write_config(broken);
  s.agent->process().terminate(SIGHUP);
  CHECK(poll_until(
      [&] { return s.agent->log_text().find("is not valid; keeping") != std::string::npos; }, 10s));
  CHECK(s.agent->log_text().find("client_id") != std::string::npos);
  // Still serving requests with the old configuration.
  auto reply = s.display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  CHECK(s.agent->running());
}

TEST_CASE("service: SIGHUP applies a changed configuration") {
  Scenario s;
  auto changed = s.config;
  changed.accounts += "hall:\n  client_id: 00000000-0000-0000-0000-000000000002\n";
  s.agent->write_config(changed);
  const auto since = s.display.mark();
  s.agent->process().terminate(SIGHUP);
  auto info = s.display.wait_for_json(
      "graph2mqtt/bridge/info",
      [](const rapidjson::Value& v) {
        return v.HasMember("accounts") && v["accounts"].Size() == 2;
      },
      10s, since);
  CHECK(std::string(info.json()["accounts"][1].GetString()) == "hall");
  s.wait_state("hall", "signed_out", since);
  auto reply = s.display.request("status", R"({"account":"hall"})");
  CHECK(json_str(reply, "status") == "ok");
}

TEST_CASE("service: SIGTERM publishes offline and exits 0 within 2 seconds" *
          doctest::test_suite("faults")) {
  Scenario s;
  const auto since = s.display.mark();
  CHECK(s.agent->stop(2s) == 0);  // nullopt (and a SIGKILL) if it had not exited by then
  s.display.wait_for(
      "graph2mqtt/bridge/state",
      [](const Message& m) { return m.payload == R"({"state":"offline"})"; }, 5s, since);
}
