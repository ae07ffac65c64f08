// Faults we can stage on one machine (issue 5): the agent keeps working, loses no token, and
// says what is wrong. Labelled `faults` in ctest (the doctest suite name becomes the label).
#include <doctest/doctest.h>

#include <random>

#include "harness_fault_proxy.h"
#include "scenario_broker.h"
#include "scenario_commands.h"
#include "scenario_identity.h"

using namespace g2m::test;

namespace {

enum class Route { identity, graph };

// A test world whose agent reaches the identity platform (or Graph) through a FaultProxy, so
// the test can make the platform refuse connections and come back on the same port.
struct ProxiedWorld {
  explicit ProxiedWorld(Route route) : s(), proxy(s.simulator.https_port()) {
    auto config = s.config;
    if (route == Route::identity) {
      config.authority = proxy.https_url();
    } else {
      config.graph = proxy.https_url() + "/v1.0";
    }
    s.agent->stop();
    s.agent->write_config(config);
    const auto since = s.display.mark();
    s.agent->start();
    s.wait_online(since);
  }
  Scenario s;
  FaultProxy proxy;
};

std::filesystem::path token_file(Scenario& s) {
  return s.agent->storage_dir() / "kitchen.json";
}

// The account's state as the `status` command reports it.
std::string state_of(Scenario& s) {
  return json_str(s.display.request("status", R"({"account":"kitchen"})")["data"], "state");
}

// Waits for the fetches that follow a sign-in: both resources published (the next are 30 s and
// 1 h away, so a fault injected now meets the test's own request first).
void wait_for_resources(Scenario& s) {
  const auto is_object = [](const rapidjson::Value& v) { return v.IsObject(); };
  s.display.wait_for_json("graph2mqtt/kitchen/graph/presence", is_object);
  s.display.wait_for_json("graph2mqtt/kitchen/graph/me", is_object);
}

bool mentions(const std::string& text, const std::string& word) {
  return lower(text).find(word) != std::string::npos;
}

// A resource refresh command, sent again after retry_in while the per-second limit refuses it.
rapidjson::Document refresh_resource(Scenario& s, const std::string& resource) {
  return request_when_allowed(s, "refresh",
                              R"({"account":"kitchen","resource":")" + resource + R"("})");
}

}  // namespace

TEST_SUITE("faults") {
  TEST_CASE("faults: SIGKILL at 20 points of sign-ins and refreshes never leaves a corrupt file") {
    Scenario s;
    s.sign_in();
    std::mt19937 random(20261129);
    const auto file = s.agent->storage_dir() / "kitchen.json";
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      const bool refresh = round % 2 == 0;
      if (refresh) {
        s.display.publish("graph2mqtt/bridge/request/refresh", R"({"account":"kitchen"})");
      } else {
        s.display.publish("graph2mqtt/bridge/request/login",
                          R"({"account":"kitchen","force":true})");
      }
      // Kill at a random point of the exchange: before, during or after the token request.
      const auto until =
          std::chrono::steady_clock::now() +
          std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 40)(random));
      poll_until([&] { return std::chrono::steady_clock::now() >= until; }, 1s);
      s.agent->kill9();
      // The file is either the old or the new tokens, never half of one.
      if (std::filesystem::exists(file)) {
        const auto doc = try_parse_json(read_file(file));
        CHECK_FALSE(doc.HasParseError());
      }
      const auto since = s.display.mark();
      s.agent->start();
      s.wait_online(since);
      // Restarted: signed in from the stored tokens (the file is never lost on the way).
      s.wait_state("kitchen", "signed_in", since);
    }
    // No rotated_token_reuse check here: a kill between the platform's answer and the write to
    // disk leaves the previous refresh token, which Microsoft keeps valid; using it again is the
    // correct recovery, and the other token tests assert zero reuse without crashes.
  }

  TEST_CASE("faults: a truncated token answer is retried and the sign-in completes") {
    Scenario s;
    unusable_token_answers_are_retried(
        s, R"({"endpoint":"token","count":2,"status":200,"body":"{\"access_token\":\"trunc"})");
  }

  TEST_CASE("faults: an identity platform whose certificate another CA signed fails closed") {
    ScenarioOptions options;
    Scenario s(options);
    auto config = s.config;
    config.ca = s.pki.other_ca;  // the agent trusts only an unrelated CA (besides the system's)
    s.agent->stop();
    s.agent->write_config(config);
    const auto since = s.display.mark();
    s.agent->start();
    s.wait_online(since);
    transient_auth_failure(s, "login", "tls_error");
    // Nothing reached the platform over an unverified connection.
    CHECK(s.simulator.counters().devicecode == 0);
    CHECK(state_of(s) == "signed_out");
  }

  TEST_CASE("faults: a 401 storm on Graph refreshes once per fetch and then backs off") {
    Scenario s;
    s.sign_in();
    wait_for_resources(s);  // the storm starts after the fetches that follow the sign-in
    const auto refreshes_before = s.simulator.counters().refresh;
    s.simulator.fail(
        R"({"endpoint":"/v1.0/me/presence","count":50,"status":401,"error":"InvalidAuthenticationToken"})");
    auto reply = s.display.request("refresh", R"({"account":"kitchen","resource":"presence"})");
    CHECK(json_str(reply, "status") == "ok");
    CHECK(reply["data"]["status"].GetInt() == 401);
    // One refresh for that fetch, not a loop of them; the account stays signed in.
    CHECK(s.simulator.counters().refresh == refreshes_before + 1);
    CHECK(state_of(s) == "signed_in");
    s.display.wait_for_json(
        "graph2mqtt/kitchen/graph/me", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        0);
  }

  TEST_CASE("faults: an identity platform that refuses connections gets the login retried") {
    ProxiedWorld w(Route::identity);
    auto& s = w.s;
    w.proxy.refuse();
    const auto since = s.display.mark();
    const auto error = transient_auth_failure(s, "login", "network_error");
    CHECK_MESSAGE(mentions(json_str(error, "description"), "refused"), to_json(error));
    CHECK(s.simulator.counters().devicecode == 0);
    CHECK(state_of(s) != "signed_in");

    // Back on the same port: the agent's own retry gets the code, and the sign-in completes.
    w.proxy.accept_again();
    const auto code = s.display.wait_for_json(
        s.topic("kitchen", "auth/code"), [](const rapidjson::Value& v) { return v.IsObject(); },
        std::chrono::seconds(error["retry_in"].GetInt() + 15), since);
    s.simulator.approve(json_str(code.json(), "user_code"));
    s.wait_state("kitchen", "signed_in", since, 30s);
    CHECK(s.simulator.counters().interval_violations == 0);
    CHECK(std::filesystem::exists(token_file(s)));
  }

  TEST_CASE("faults: a refresh while the identity platform refuses connections keeps the tokens") {
    ProxiedWorld w(Route::identity);
    auto& s = w.s;
    s.sign_in();
    const auto stored = read_file(token_file(s));
    const long refreshes = s.simulator.counters().refresh;
    w.proxy.refuse();

    const auto since = s.display.mark();
    const auto error = transient_auth_failure(s, "refresh", "network_error");
    // Nothing lost: the same tokens on disk, still signed in, nothing reached the platform.
    CHECK(read_file(token_file(s)) == stored);
    CHECK(state_of(s) == "signed_in");
    CHECK(s.simulator.counters().refresh == refreshes);

    // Back: the agent's retry refreshes, and the new tokens are on disk.
    w.proxy.accept_again();
    s.wait_event("kitchen", "token_refreshed", since,
                 std::chrono::seconds(error["retry_in"].GetInt() + 15));
    CHECK(s.simulator.counters().refresh == refreshes + 1);
    const auto now_stored = read_file(token_file(s));
    CHECK(now_stored != stored);
    CHECK_FALSE(try_parse_json(now_stored).HasParseError());
    CHECK(s.simulator.counters().rotated_token_reuse == 0);
  }

  TEST_CASE("faults: token polls reset mid-response are retried at the interval") {
    Scenario s;
    s.simulator.fail(R"({"endpoint":"token","count":2,"reset":true})");
    const auto since = s.display.mark();
    const auto code = s.login();
    auto error = s.wait_event("kitchen", "auth_error", since).json();
    CHECK(json_str(error, "error") == "network_error");
    CHECK(error["retry_in"].IsInt());
    // The code is still good: the sign-in waits on and completes once the user approves.
    CHECK(state_of(s) == "pending");
    s.simulator.approve(code);
    s.wait_state("kitchen", "signed_in", since, 30s);
    // The reset polls count as polls: none of the retries came sooner than the interval.
    CHECK(s.simulator.counters().interval_violations == 0);
  }

  TEST_CASE("faults: a refresh answer reset mid-response leaves the tokens and is retried") {
    Scenario s;
    s.sign_in();
    const auto stored = read_file(token_file(s));
    s.simulator.fail(R"({"endpoint":"refresh","reset":true})");
    const auto since = s.display.mark();
    const auto error = transient_auth_failure(s, "refresh", "network_error");
    CHECK_MESSAGE(mentions(json_str(error, "description"), "reset"), to_json(error));
    CHECK(read_file(token_file(s)) == stored);
    s.wait_event("kitchen", "token_refreshed", since,
                 std::chrono::seconds(error["retry_in"].GetInt() + 15));
    CHECK(read_file(token_file(s)) != stored);
    CHECK(s.simulator.counters().rotated_token_reuse == 0);
    CHECK(state_of(s) == "signed_in");
  }

  TEST_CASE("faults: a Graph answer reset mid-response fails that resource only") {
    Scenario s;
    s.sign_in();
    wait_for_resources(s);
    const auto presence = s.display.retained_value("graph2mqtt/kitchen/graph/presence");
    s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","reset":true})");
    const auto since = s.display.mark();
    auto reply = refresh_resource(s, "presence");
    CHECK(json_str(reply, "status") == "error");
    CHECK(mentions(json_str(reply, "error"), "network_error"));
    auto error = s.wait_event("kitchen", "graph_error", since).json();
    CHECK(json_str(error, "resource") == "presence");
    CHECK(error["status"].IsNull());
    CHECK(json_str(error, "code") == "network_error");
    CHECK(error["retry_in"].IsInt());
    // The last good body stays; the other resource and the tokens are untouched.
    CHECK(s.display.retained_value("graph2mqtt/kitchen/graph/presence") == presence);
    CHECK(state_of(s) == "signed_in");
    auto me = refresh_resource(s, "me");
    CHECK(json_str(me, "status") == "ok");
    // The next fetch publishes again.
    s.simulator.config(R"({"presence":{"availability":"Busy","activity":"InACall"}})");
    CHECK(json_str(refresh_resource(s, "presence"), "status") == "ok");
    s.display.wait_for_json(
        "graph2mqtt/kitchen/graph/presence",
        [](const rapidjson::Value& v) { return json_str(v, "availability") == "Busy"; }, 10s,
        since);
  }

  TEST_CASE("faults: Graph refusing connections fails the fetches but not the sign-in") {
    ProxiedWorld w(Route::graph);
    auto& s = w.s;
    s.sign_in();
    wait_for_resources(s);
    const auto stored = read_file(token_file(s));
    const long refreshes = s.simulator.counters().refresh;
    w.proxy.refuse();

    const auto since = s.display.mark();
    auto reply = refresh_resource(s, "presence");
    CHECK(json_str(reply, "status") == "error");
    auto error = s.wait_event("kitchen", "graph_error", since).json();
    CHECK(json_str(error, "resource") == "presence");
    CHECK(error["status"].IsNull());
    CHECK(json_str(error, "code") == "network_error");
    CHECK(mentions(json_str(error, "message"), "refused"));
    CHECK(error["retry_in"].IsInt());
    // A network failure is not a 401: no refresh, the same tokens, still signed in.
    CHECK(s.simulator.counters().refresh == refreshes);
    CHECK(read_file(token_file(s)) == stored);
    CHECK(state_of(s) == "signed_in");

    w.proxy.accept_again();
    s.simulator.config(R"({"presence":{"availability":"Away","activity":"Away"}})");
    CHECK(json_str(refresh_resource(s, "presence"), "status") == "ok");
    s.display.wait_for_json(
        "graph2mqtt/kitchen/graph/presence",
        [](const rapidjson::Value& v) { return json_str(v, "availability") == "Away"; }, 10s,
        since);
  }

  TEST_CASE(
      "faults: a Graph answer that hangs past identity.timeout or comes truncated fails "
      "that fetch only") {
    ScenarioOptions options;
    options.identity_extra = "timeout: 2s\n";
    Scenario s(options);
    s.sign_in();
    wait_for_resources(s);
    const auto presence = s.display.retained_value("graph2mqtt/kitchen/graph/presence");

    // Hangs: the fetch gives up after the timeout.
    s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","delay_ms":4000})");
    auto since = s.display.mark();
    CHECK(json_str(refresh_resource(s, "presence"), "status") == "error");
    auto error = s.wait_event("kitchen", "graph_error", since).json();
    CHECK(json_str(error, "resource") == "presence");
    CHECK(error["status"].IsNull());
    CHECK(json_str(error, "code") == "timeout");
    CHECK(error["retry_in"].IsInt());

    // Truncated: a 200 whose JSON stops half-way is not published.
    s.simulator.fail(
        R"({"endpoint":"/v1.0/me/presence","status":200,"content_type":"application/json",)"
        R"("body":"{\"availability\":\"Bu"})");
    since = s.display.mark();
    auto reply = refresh_resource(s, "presence");
    CHECK(json_str(reply, "status") == "ok");
    error = s.wait_event("kitchen", "graph_error", since).json();
    CHECK(json_str(error, "code") == "invalid_json");
    CHECK(error["status"].GetInt() == 200);

    // Neither touched the last good body, the tokens or the state.
    CHECK(s.display.retained_value("graph2mqtt/kitchen/graph/presence") == presence);
    CHECK(state_of(s) == "signed_in");
    CHECK(s.simulator.counters().refresh == 0);
  }

  TEST_CASE(
      "faults: a Graph whose certificate another CA signed fails closed and never gets "
      "a token") {
    Scenario s;
    // A second simulator as Graph, its certificate right for 127.0.0.1 in every way but its
    // issuer, which the agent does not trust.
    Pki rogue_pki = s.pki;
    rogue_pki.server_cert = s.pki.other_server_cert;
    rogue_pki.server_key = s.pki.other_server_key;
    Simulator rogue(rogue_pki);
    auto config = s.config;
    config.graph = rogue.https_url() + "/v1.0";
    s.agent->stop();
    s.agent->write_config(config);
    auto since = s.display.mark();
    s.agent->start();
    s.wait_online(since);

    since = s.display.mark();
    s.sign_in();
    for (const char* resource : {"me", "presence"}) {
      CAPTURE(resource);
      auto error = s.display
                       .wait_for_json(
                           "graph2mqtt/kitchen/events",
                           [&](const rapidjson::Value& v) {
                             return json_str(v, "event") == "graph_error" &&
                                    json_str(v, "resource") == resource;
                           },
                           10s, since)
                       .json();
      CHECK(error["status"].IsNull());
      CHECK(json_str(error, "code") == "tls_error");
      CHECK(error["retry_in"].IsInt());
    }
    auto reply = s.display.request("graph", R"({"account":"kitchen","path":"/me"})");
    CHECK(json_str(reply, "status") == "error");
    // Not one request reached the impostor: no token left the agent over that connection.
    const auto counters = rogue.counters();
    CHECK(counters.graph == 0);
    CHECK(counters.tls_handshakes == 0);
    // The sign-in itself is untouched, and nothing was published for the resources.
    CHECK(state_of(s) == "signed_in");
    CHECK_FALSE(s.display.retained_value("graph2mqtt/kitchen/graph/me").has_value());
    CHECK(s.simulator.counters().refresh == 0);
  }
}
