// `graph2mqtt login ACCOUNT` (graph2mqtt(1)): a sign-in from a terminal that stores the tokens
// where the agent finds them, with its exit statuses, and a running agent picking them up.
#include <doctest/doctest.h>

#include <csignal>

#include "scenario_extra.h"

using namespace g2m::test;

namespace {

// A simulator that approves every code 1 s after issuing it (at the next poll).
ScenarioOptions auto_approving() {
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--auto-approve-after", "1"};
  return options;
}

// The agent is stopped: the terminal is alone with the identity platform.
void stop_agent(Scenario& s) {
  wait_started(s);
  REQUIRE(s.agent->stop() == 0);
}

// Waits until the simulator has issued a code and returns it.
std::string wait_for_issued_code(Scenario& s) {
  REQUIRE(poll_until([&] { return !sim_codes(s.simulator).empty(); }, 10s));
  return sim_codes(s.simulator).front().user_code;
}

}  // namespace

TEST_CASE("terminal login: signs in from a terminal, and the agent then uses the stored tokens") {
  Scenario s(auto_approving());
  stop_agent(s);

  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 0);
  const auto codes = sim_codes(s.simulator);
  REQUIRE(codes.size() == 1);
  CHECK(codes[0].state == "redeemed");
  // The platform's message, with the code and the page.
  CHECK_MESSAGE(output.find("To sign in, use a web browser to open the page "
                            "https://microsoft.com/devicelogin and enter the code " +
                            codes[0].user_code) != std::string::npos,
                output);
  const auto file = the_token_file(*s.agent);
  CHECK(mode_of(file) == 0600U);
  CHECK(mode_of(s.agent->storage_dir()) == 0700U);
  CHECK_FALSE(try_parse_json(read_file(file)).HasParseError());
  // Secrets are not printed.
  const auto stored = parse_json(read_file(file));
  for (const char* key : {"access_token", "refresh_token"}) {
    const auto secret = json_str(stored, key);
    if (!secret.empty()) CHECK(output.find(secret) == std::string::npos);
  }
  auto counters = s.simulator.counters();
  CHECK(counters.devicecode == 1);
  CHECK(counters.interval_violations == 0);

  // The agent starts signed in from that file: no device-code request, no signed_in event.
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  auto state = s.wait_state("kitchen", "signed_in", since).json();
  CHECK(json_str(state["user"], "name") == "Adele Vance");
  CHECK(json_str(state["user"], "username") == "adele@contoso.com");
  wait_resources(s, since);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_in"));
  counters = s.simulator.counters();
  CHECK(counters.devicecode == 1);
  CHECK(counters.interval_violations == 0);
}

TEST_CASE("terminal login: refuses when the account has tokens, unless --force") {
  Scenario s(auto_approving());
  stop_agent(s);
  REQUIRE(run_to_exit(s, {"login", "kitchen"}) == 0);
  const auto file = the_token_file(*s.agent);
  const auto first = read_file(file);

  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 1);
  CHECK_MESSAGE(output.find("--force") != std::string::npos, output);
  CHECK(read_file(file) == first);                // untouched
  CHECK(s.simulator.counters().devicecode == 1);  // not even asked

  // Options may come after the sub-command or before it.
  CHECK(run_to_exit(s, {"login", "kitchen", "--force"}) == 0);
  const auto second = read_file(the_token_file(*s.agent));
  CHECK(second != first);
  CHECK_FALSE(try_parse_json(second).HasParseError());
  CHECK(s.simulator.counters().devicecode == 2);
  CHECK(run_to_exit(s, {"--force", "login", "kitchen"}) == 0);
  CHECK(read_file(the_token_file(*s.agent)) != second);
  CHECK(s.simulator.counters().devicecode == 3);
}

TEST_CASE("terminal login: an unknown account is exit 2") {
  Scenario s(auto_approving());
  stop_agent(s);
  std::string output;
  CHECK(run_to_exit(s, {"login", "nosuch"}, 20s, &output) == 2);
  CHECK_MESSAGE(output.find("nosuch") != std::string::npos, output);
  CHECK(s.simulator.counters().devicecode == 0);
  CHECK_FALSE(has_token_file(*s.agent));
}

TEST_CASE("terminal login: a running agent without tokens picks up the new file within 2 s") {
  Scenario s(auto_approving());
  wait_started(s);
  const auto since = s.display.mark();
  REQUIRE(run_to_exit(s, {"login", "kitchen"}) == 0);
  const auto exited = SteadyClock::now();
  auto state = s.wait_state("kitchen", "signed_in", since, 2500ms);
  CHECK(seconds_between(exited, state.arrived) <= 2.0);
  CHECK(json_str(state.json()["user"], "name") == "Adele Vance");
  CHECK(state.json()["code"].IsNull());
  wait_resources(s, since);
  CHECK(s.simulator.counters().devicecode == 1);  // the terminal's only
  // The agent never showed a code.
  for (const auto& m : messages_since(s, "graph2mqtt/kitchen/auth/code", since)) {
    CHECK(m.payload.empty());
  }
  // The agent uses those tokens as its own: a refresh works, and rotates the stored file.
  const auto before_refresh = s.display.mark();
  const auto stored = read_file(the_token_file(*s.agent));
  REQUIRE(json_str(s.display.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", before_refresh);
  CHECK(read_file(the_token_file(*s.agent)) != stored);
}

TEST_CASE("terminal login: a declined sign-in is exit 1 and stores nothing") {
  Scenario s;  // no auto-approval
  stop_agent(s);
  auto process = s.agent->run({"login", "kitchen"});
  s.simulator.decline(wait_for_issued_code(s));
  CHECK(process.wait_exit(10s) == 1);
  CHECK_FALSE(has_token_file(*s.agent));
  CHECK(s.simulator.counters().interval_violations == 0);
}

TEST_CASE("terminal login: a code that expires unused is exit 1") {
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--expires-in", "2"};
  Scenario s(options);
  stop_agent(s);
  CHECK(run_to_exit(s, {"login", "kitchen"}) == 1);
  CHECK_FALSE(has_token_file(*s.agent));
  CHECK(s.simulator.counters().devicecode == 1);  // renew_code does not apply
}

TEST_CASE("terminal login: an external SIGUSR2 is ignored and Ctrl-C still ends it") {
  Scenario s;
  stop_agent(s);
  auto process = s.agent->run({"login", "kitchen"});
  wait_for_issued_code(s);
  process.terminate(SIGUSR2);  // once ended its signal thread: Ctrl-C then went unheard
  CHECK(process.running());
  process.terminate(SIGINT);
  CHECK(process.wait_exit(5s) == 1);  // nullopt when SIGINT went unheard
  CHECK_FALSE(has_token_file(*s.agent));
}

TEST_CASE("terminal login: Ctrl-C while waiting is exit 1 and stores nothing") {
  Scenario s;
  stop_agent(s);
  auto process = s.agent->run({"login", "kitchen"});
  const auto user_code = wait_for_issued_code(s);
  process.terminate(SIGINT);
  CHECK(process.wait_exit(5s) == 1);
  CHECK_FALSE(has_token_file(*s.agent));
  CHECK(sim_codes(s.simulator).front().state == "pending");
  CHECK(user_code.size() == 9);
}

TEST_CASE("terminal login: an OAuth error is exit 1") {
  Scenario s;
  stop_agent(s);
  s.simulator.fail(
      R"({"endpoint":"token","count":1,"error":"bad_verification_code","error_codes":[70018],)"
      R"("description":"Invalid verification code."})");
  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 1);
  CHECK_MESSAGE(output.find("AADSTS70018") != std::string::npos, output);
  CHECK_FALSE(has_token_file(*s.agent));
}

TEST_CASE("terminal login: works without a broker") {
  Scenario s(auto_approving());
  stop_agent(s);
  auto config = s.agent->config();
  config.mqtt_server = "mqtt://127.0.0.1:" + std::to_string(free_port());  // nobody there
  s.agent->write_config(config);
  CHECK(run_to_exit(s, {"login", "kitchen"}) == 0);
  CHECK(has_token_file(*s.agent));
}
