// Hardening (issue 14): hostile answers from upstream, planted token files, stray signals and
// core dumps. Labelled `hardening` in ctest (the doctest suite name becomes the label).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include "json/json.h"
#include "scenario.h"
#include "scenario_commands.h"
#include "scenario_identity.h"

using namespace g2m::test;

namespace {

// 200,000 open brackets: RapidJSON's recursive parser overflowed the stack at about 150,000.
const std::string kDeep(200000, '[');

// A /_sim/fail request that answers `endpoint` once with HTTP 200 and `body`.
std::string answer_once(const std::string& endpoint, const std::string& body, int count = 1) {
  return g2m::json::object([&](g2m::json::Fields& f) {
    f.str("endpoint", endpoint)
        .num("count", count)
        .num("status", 200)
        .str("content_type", "application/json")
        .str("body", body);
  });
}

std::filesystem::path token_file(Scenario& s) {
  return s.agent->storage_dir() / "kitchen.json";
}

bool log_mentions(Scenario& s, const std::string& word) {
  return s.agent->log_text().find(word) != std::string::npos;
}

// Stops the agent, lets `change` alter its token folder, and starts it again.
template <typename Change>
std::size_t restart_after(Scenario& s, Change&& change) {
  REQUIRE(s.agent->stop() == 0);
  change();
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  return since;
}

// The agent, started on a "broker" that takes the TCP connection and never answers.
void start_on_silent_broker(Scenario& s, const SilentListener& silent) {
  s.config.mqtt_server = "mqtt://127.0.0.1:" + std::to_string(silent.port());
  s.agent = std::make_unique<Agent>(s.config);
}

}  // namespace

TEST_SUITE("hardening") {
  TEST_CASE("hardening: SIGTERM while the MQTT connect is in flight ends the agent cleanly") {
    // The client is destroyed with its connect under way: its callbacks must be gone first
    // (under ASan a late callback into a destroyed session fails this test).
    SilentListener silent;
    ScenarioOptions options;
    options.start_agent = false;
    Scenario s(options);
    start_on_silent_broker(s, silent);
    REQUIRE(silent.wait_connections(1, 10s));
    s.agent->process().terminate(SIGTERM);
    CHECK(s.agent->process().wait_exit(10s) == 0);
  }

  TEST_CASE("hardening: a SIGHUP that replaces the MQTT client while it connects is survived") {
    SilentListener silent;
    ScenarioOptions options;
    options.start_agent = false;
    Scenario s(options);
    start_on_silent_broker(s, silent);
    REQUIRE(silent.wait_connections(1, 10s));
    auto changed = s.config;
    changed.mqtt_extra = "keepalive: 30s\n";  // an mqtt setting: a new client, every account
    s.agent->write_config(changed);
    s.agent->process().terminate(SIGHUP);
    CHECK(poll_until(
        [&] { return s.agent->log_text().find("restarting every account") != std::string::npos; },
        10s));
    CHECK(silent.wait_connections(2, 15s));  // the new client connects in its turn
    CHECK(s.agent->process().running());
    s.agent->process().terminate(SIGTERM);
    CHECK(s.agent->process().wait_exit(10s) == 0);
  }

  TEST_CASE("hardening: an external SIGUSR2 is ignored, SIGTERM then publishes offline, exit 0") {
    Scenario s;
    s.agent->process().terminate(SIGUSR2);
    // Still serving requests: the signal changed nothing.
    CHECK(json_str(s.display.request("status", R"({"account":"kitchen"})"), "status") == "ok");
    const auto since = s.display.mark();
    CHECK(s.agent->stop(5s) == 0);  // nullopt (and a SIGKILL) when SIGTERM went unheard
    s.display.wait_for(
        "graph2mqtt/bridge/state",
        [](const Message& m) { return m.payload == R"({"state":"offline"})"; }, 5s, since);
  }

  TEST_CASE("hardening: the agent runs with core dumps off (RLIMIT_CORE 0, not dumpable)") {
    Scenario s;
    const auto pid = std::to_string(s.agent->process().pid());
    const std::string limits = read_file("/proc/" + pid + "/limits");
    const auto line = limits.find("Max core file size");
    REQUIRE(line != std::string::npos);
    std::istringstream row(
        limits.substr(line + std::strlen("Max core file size"), limits.find('\n', line) - line));
    std::string soft, hard;
    row >> soft >> hard;
    CHECK(soft == "0");
    CHECK(hard == "0");
    // Not dumpable: the kernel hands /proc/PID/* to root, which only shows when we are not root.
    if (::geteuid() != 0) {
      struct stat st {};
      REQUIRE(::stat(("/proc/" + pid + "/mem").c_str(), &st) == 0);
      CHECK(st.st_uid == 0);
    }
  }

  TEST_CASE("hardening: a Graph answer nested 200,000 levels deep is graph_error invalid_json") {
    Scenario s;
    s.sign_in();
    s.display.wait_for_json("graph2mqtt/kitchen/graph/presence",
                            [](const rapidjson::Value& v) { return v.IsObject(); });
    const auto presence = s.display.retained_value("graph2mqtt/kitchen/graph/presence");
    s.simulator.fail(answer_once("/v1.0/me/presence", kDeep));
    const auto since = s.display.mark();
    auto reply =
        request_when_allowed(s, "refresh", R"({"account":"kitchen","resource":"presence"})");
    CHECK(json_str(reply, "status") == "ok");
    auto error = s.wait_event("kitchen", "graph_error", since).json();
    CHECK(json_str(error, "resource") == "presence");
    CHECK(json_str(error, "code") == "invalid_json");
    CHECK(error["retry_in"].IsInt());
    // Alive, still signed in, and the last good body kept.
    CHECK(s.agent->running());
    CHECK(s.display.retained_value("graph2mqtt/kitchen/graph/presence") == presence);
    CHECK(json_str(s.display.request("status", R"({"account":"kitchen"})")["data"], "state") ==
          "signed_in");
  }

  TEST_CASE("hardening: a device-code answer nested 200,000 levels deep is invalid_response") {
    Scenario s;
    s.simulator.fail(answer_once("devicecode", kDeep));
    transient_auth_failure(s, "login", "invalid_response");
    CHECK(s.agent->running());
  }

  TEST_CASE("hardening: token answers nested 200,000 levels deep are retried, the sign-in ends") {
    Scenario s;
    unusable_token_answers_are_retried(s, answer_once("token", kDeep, 2));
  }

  TEST_CASE("hardening: a device-code answer with an http:// verification_uri is refused") {
    Scenario s;
    s.simulator.fail(answer_once(
        "devicecode",
        R"({"device_code":"DC","user_code":"ABCD1234","verification_uri":"http://phish.example/)"
        R"(devicelogin","expires_in":900,"interval":1})"));
    const auto error = transient_auth_failure(s, "login", "invalid_response");
    CHECK(json_str(error, "description").find("https") != std::string::npos);
    // Nothing was shown to a display.
    const auto code = s.display.retained_value("graph2mqtt/kitchen/auth/code");
    CHECK((!code || code->empty()));
  }

  TEST_CASE("hardening: control characters in a device-code message never reach a display") {
    Scenario s;
    s.simulator.fail(answer_once(
        "devicecode",
        R"({"device_code":"DC","user_code":"ABCD1234","verification_uri":"https://microsoft.com/)"
        R"(devicelogin","expires_in":900,"interval":5,)"
        R"("message":"Open\u001b[2J\u001b[31m the page\r\nand\u0007 enter ABCD1234\u0000."})"));
    const auto since = s.display.mark();
    auto reply = s.display.request("login", R"({"account":"kitchen"})");
    CHECK(json_str(reply, "status") == "ok");
    auto code = s.display.wait_for_json(
        "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        since);
    const std::string message = json_str(code.json(), "message");
    CHECK(message == "Open[2J[31m the pageand enter ABCD1234.");
    for (const char c : message) CHECK(static_cast<unsigned char>(c) >= 0x20);
  }

  TEST_CASE("hardening: a token file nested 200,000 levels deep is corrupt: signed out") {
    Scenario s;
    const auto since = restart_after(s, [&] {
      std::filesystem::create_directories(s.agent->storage_dir());
      std::ofstream(token_file(s)) << kDeep;
      std::filesystem::permissions(
          token_file(s), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    });
    s.wait_state("kitchen", "signed_out", since);
    CHECK(poll_until([&] { return log_mentions(s, "nested deeper than 256 levels"); }, 5s));
    CHECK(s.agent->running());
  }

  TEST_CASE("hardening: a token file readable by others is never loaded (it may be planted)") {
    Scenario s;
    s.sign_in();
    const auto since = restart_after(s, [&] {
      std::filesystem::permissions(token_file(s), std::filesystem::perms::others_read,
                                   std::filesystem::perm_options::add);
    });
    s.wait_state("kitchen", "signed_out", since);
    CHECK(
        poll_until([&] { return log_mentions(s, "readable or writable by group or others"); }, 5s));
    CHECK(s.simulator.counters().refresh == 0);
  }
}
