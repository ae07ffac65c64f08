// The browser sign-in (docs/mqtt-api.md "Browser sign-in and tenant policy", §2 login.method and
// complete) and tenant policy (§6 "Tenant policy"), as a display sees them over MQTT, with the
// simulator's PKCE, code-reuse and policy counters as the referee.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>

#include "http/http.h"
#include "scenario_commands.h"
#include "scenario_extra.h"

using namespace g2m::test;

namespace {

const char* const kCode = "graph2mqtt/kitchen/auth/code";

std::string param(const std::string& url, const std::string& name) {
  for (const auto& [k, v] : g2m::form_decode(url.substr(url.find('?') + 1))) {
    if (k == name) return v;
  }
  return "";
}

// login with method browser: the reply carries the browser sign-in; returns its sign_in_url.
std::string browser_login(Scenario& s, const std::string& extra = R"(,"method":"browser")") {
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen")" + extra + "}");
  REQUIRE_MESSAGE(json_str(reply, "status") == "ok", json_str(reply, "error"));
  const auto& code = reply["data"]["code"];
  REQUIRE(code.IsObject());
  CHECK(json_str(code, "method") == "browser");
  auto published = s.display.wait_for_json(
      kCode, [](const rapidjson::Value& v) { return v.IsObject(); }, 10s, since);
  return json_str(published.json(), "sign_in_url");
}

std::string json_quote(const std::string& text) {
  rapidjson::Value v;
  v.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return to_json(v);
}

rapidjson::Document complete(Scenario& s, const std::string& address) {
  return s.display.request("complete", R"({"account":"kitchen","url":)" + json_quote(address) + "}",
                           20s);
}

void check_clean_protocol(Scenario& s) {
  const auto c = s.simulator.counters();
  CHECK_MESSAGE(c.pkce_failures == 0, c.json);
  CHECK_MESSAGE(c.code_reuse == 0, c.json);
  CHECK_MESSAGE(c.redirect_uri_mismatches == 0, c.json);
  CHECK_MESSAGE(c.interval_violations == 0, c.json);
  CHECK_MESSAGE(c.rotated_token_reuse == 0, c.json);
}

TenantPolicy refusing(const std::string& where, long code,
                      const std::string& error = "invalid_grant") {
  TenantPolicy p;
  p.device_code = where;
  p.device_code_error_code = code;
  p.error = error;
  return p;
}

// The sign-in address `graph2mqtt login` printed, once it asks for the final address.
std::string printed_sign_in_url(Process& process) {
  std::string url;
  REQUIRE(poll_until(
      [&] {
        const auto text = process.log_text();
        const auto path = text.find("/oauth2/v2.0/authorize?");
        if (path == std::string::npos || text.find("paste it here") == std::string::npos) {
          return false;
        }
        const auto at = text.rfind("https://", path);
        url = text.substr(at, text.find('\n', at) - at);
        return true;
      },
      10s));
  return url;
}

// Where a terminal login started by run_terminal_login() reads its standard input from.
std::filesystem::path stdin_fifo(Scenario& s) {
  return s.tmp / "stdin";
}

// Stops the agent and runs `graph2mqtt ARGS` with its standard input a FIFO (stdin_fifo) that
// the test writes the final address to.
Process run_terminal_login(Scenario& s, const std::vector<std::string>& args) {
  REQUIRE(s.agent->stop() == 0);
  REQUIRE(::mkfifo(stdin_fifo(s).c_str(), 0600) == 0);
  return s.agent->run(args, stdin_fifo(s));
}

ScenarioOptions with_method(const std::string& method, const std::string& extra = "") {
  ScenarioOptions o;
  o.accounts = kitchen_account("  sign_in_method: " + method + "\n" + extra);
  return o;
}

}  // namespace

TEST_CASE(
    "browser sign-in: login with method browser publishes a sign-in address and complete signs "
    "in") {
  Scenario s;
  wait_started(s);
  const auto since = s.display.mark();
  const std::string url = browser_login(s);

  // auth/code, auth/state and code_issued all carry the browser sign-in.
  const auto code = parse_json(*s.display.retained_value(kCode));
  CHECK(json_str(code, "method") == "browser");
  CHECK(code["user_code"].IsNull());
  CHECK(code["verification_uri"].IsNull());
  CHECK(code["interval"].IsNull());
  CHECK(url.find("/common/oauth2/v2.0/authorize?") != std::string::npos);
  CHECK(param(url, "response_type") == "code");
  CHECK(param(url, "response_mode") == "query");
  CHECK(param(url, "code_challenge_method") == "S256");
  CHECK(param(url, "code_challenge").size() == 43);
  CHECK(param(url, "state").size() >= 22);
  CHECK(param(url, "redirect_uri").find("/common/oauth2/nativeclient") != std::string::npos);
  const auto expires = parse_utc(json_str(code, "expires_at"));
  REQUIRE(expires);
  CHECK(*expires - now_utc() > 14 * 60);
  CHECK(*expires - now_utc() <= 15 * 60);
  auto state = s.wait_state("kitchen", "pending", since).json();
  CHECK(json_str(state["code"], "sign_in_url") == url);
  auto issued = s.wait_event("kitchen", "code_issued", since).json();
  CHECK(json_str(issued, "method") == "browser");
  CHECK(json_str(issued, "sign_in_url") == url);
  CHECK(issued["user_code"].IsNull());
  // Nothing was sent to the identity platform: a browser sign-in starts locally.
  CHECK(s.simulator.counters().devicecode == 0);

  const std::string address = s.simulator.browser_sign_in(url);
  auto reply = complete(s, address);
  REQUIRE_MESSAGE(json_str(reply, "status") == "ok", json_str(reply, "error"));
  CHECK(json_str(reply["data"], "state") == "signed_in");
  CHECK(json_str(reply["data"]["user"], "username") == "adele@contoso.com");
  auto signed_in = s.wait_event("kitchen", "signed_in", since).json();
  CHECK(json_str(signed_in["user"], "name") == "Adele Vance");
  wait_cleared(s, kCode, since);
  wait_resources(s, since);
  CHECK(has_token_file(*s.agent));
  CHECK(s.simulator.counters().authorization_code_redemptions == 1);
  check_clean_protocol(s);

  // A restart keeps the browser-born tokens; their refresh works (they are never policy-refused).
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 530035));
  const auto again = s.display.mark();
  CHECK(json_str(s.display.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", again);
  CHECK(events_since(s, "kitchen", since) ==
        std::vector<std::string>{"code_issued", "signed_in", "token_refreshed"});
  check_clean_protocol(s);
  check_no_secrets(s);
}

TEST_CASE(
    "browser sign-in: complete refuses what is not this sign-in's address and it keeps waiting") {
  Scenario s;
  wait_started(s);
  const std::string url = browser_login(s);
  const std::string good = s.simulator.browser_sign_in(url);
  const std::string code = param(good, "code");
  const auto since = s.display.mark();
  for (const std::string& bad :
       {std::string("https://login.microsoftonline.com/common/oauth2/nativeclient?code=") + code +
            "&state=someone-elses",
        "https://login.microsoftonline.com/common/oauth2/nativeclient?state=" + param(url, "state"),
        std::string("not an address at all"), std::string("")}) {
    auto reply = complete(s, bad);
    CHECK(json_str(reply, "status") == "error");
    CHECK_FALSE(reply.HasMember("retry_in"));
    CHECK(json_str(reply, "error").find(code) == std::string::npos);  // never echoes a code
  }
  // No browser sign-in pending for a device-code sign-in either, and `url` must be a string.
  CHECK(json_str(s.display.request("complete", R"({"account":"kitchen","url":5})"), "status") ==
        "error");
  CHECK(json_str(s.display.request("complete", R"({"account":"kitchen"})"), "status") == "error");
  CHECK(json_str(retained_state(s), "state") == "pending");
  CHECK(events_since(s, "kitchen", since).empty());
  CHECK(s.simulator.counters().authorization_code_redemptions == 0);
  // The real address still works.
  auto reply = complete(s, good);
  CHECK(json_str(reply, "status") == "ok");
  check_clean_protocol(s);
}

TEST_CASE("browser sign-in: complete with no browser sign-in pending is an error reply") {
  Scenario s;
  wait_started(s);
  auto reply = complete(s, "https://x/nativeclient?code=abc&state=def");
  CHECK(json_str(reply, "status") == "error");
  CHECK(json_str(reply, "error").find("no browser sign-in is pending") != std::string::npos);
  s.login();  // a device-code sign-in is no browser sign-in
  CHECK(json_str(complete(s, "https://x/nativeclient?code=abc&state=def"), "status") == "error");
  CHECK(json_str(retained_state(s), "state") == "pending");
}

TEST_CASE("browser sign-in: a user who declines ends the sign-in as declined") {
  Scenario s;
  wait_started(s);
  const std::string url = browser_login(s);
  const auto since = s.display.mark();
  auto reply = complete(s, s.simulator.browser_decline(url));
  CHECK(json_str(reply, "status") == "error");
  CHECK(json_str(reply, "error").find("declined") != std::string::npos);
  s.wait_event("kitchen", "signed_out", since);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"declined", "signed_out"});
  const auto state = retained_state(s);
  CHECK(json_str(state, "state") == "signed_out");
  CHECK(json_str(state, "reason") == "declined");
  wait_cleared(s, kCode, since);
}

TEST_CASE(
    "browser sign-in: a code the platform refuses is not resent and the user signs in again") {
  Scenario s;
  wait_started(s);
  const std::string url = browser_login(s);
  const std::string first = s.simulator.browser_sign_in(url);
  s.simulator.expire_authorization_codes();
  const auto since = s.display.mark();
  auto reply = complete(s, first);
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  CHECK(json_str(reply, "error").find("AADSTS70008") != std::string::npos);
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "error") == "invalid_grant");
  CHECK(json_str(retained_state(s), "state") == "pending");
  // The same address again is refused without reaching the platform.
  CHECK(json_str(complete(s, first), "status") == "error");
  CHECK(s.simulator.counters().code_reuse == 0);
  // Signing in again at the same address gives a new code, which works.
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  CHECK(s.simulator.counters().pkce_failures == 0);
}

TEST_CASE(
    "browser sign-in: a redemption that fails in transit is not retried and the sign-in waits") {
  Scenario s;
  wait_started(s);
  const std::string url = browser_login(s);
  const std::string address = s.simulator.browser_sign_in(url);
  s.simulator.fail(R"({"endpoint":"token","count":1,"status":503})");
  auto reply = complete(s, address);
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  CHECK(json_str(retained_state(s), "state") == "pending");
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  check_clean_protocol(s);
}

// Its 15-minute expiry (code_expired, renew_code not applied) is in the unit tests of Account, on
// the fake clock.
TEST_CASE("browser sign-in: cancel and logout end it as they end a device code") {
  Scenario s;
  wait_started(s);
  browser_login(s);
  auto since = s.display.mark();
  CHECK(json_str(s.display.request("cancel", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "signed_out", since);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"cancelled", "signed_out"});
  wait_cleared(s, kCode, since);
  // A browser sign-in sends no request, so the 10 s login limit does not apply to it.
  browser_login(s);
  since = s.display.mark();
  CHECK(json_str(s.display.request("logout", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "signed_out", since);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"signed_out"});
  CHECK(json_str(retained_state(s), "reason") == "logout");
}

TEST_CASE("browser sign-in: sign_in_method browser makes every login a browser sign-in") {
  Scenario s(with_method("browser"));
  wait_started(s);
  const std::string url = browser_login(s, "");
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  CHECK(s.simulator.counters().devicecode == 0);
}

TEST_CASE("browser sign-in: a forced browser sign-in keeps the old tokens until it succeeds") {
  Scenario s;
  s.sign_in();
  const auto first = read_file(the_token_file(*s.agent));
  auto since = s.display.mark();
  auto reply =
      s.display.request("login", R"({"account":"kitchen","force":true,"method":"browser"})");
  REQUIRE(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"]["code"], "method") == "browser");
  // Cancelled: back to the old tokens, never signed out.
  CHECK(json_str(s.display.request("cancel", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_state("kitchen", "signed_in", since);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  CHECK(read_file(the_token_file(*s.agent)) == first);
  // Completed: the new sign-in's tokens replace the old ones.
  since = s.display.mark();
  const std::string url = browser_login(s, R"(,"force":true,"method":"browser")");
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  s.wait_event("kitchen", "signed_in", since);
  CHECK(read_file(the_token_file(*s.agent)) != first);
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  check_clean_protocol(s);
}

TEST_CASE("browser sign-in: identity.max_pending_sign_ins counts browser sign-ins too") {
  ScenarioOptions options;
  options.accounts = kitchen_account() + hall_account();
  options.identity_extra = "max_pending_sign_ins: 1\n";
  Scenario s(options);
  s.wait_state("hall", "signed_out");
  browser_login(s);
  auto reply = s.display.request("login", R"({"account":"hall","method":"browser"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK(json_str(reply, "error").find("max_pending_sign_ins") != std::string::npos);
  REQUIRE(reply["retry_in"].IsInt());
  CHECK(reply["retry_in"].GetInt() <= 900);  // at the latest when the browser sign-in expires
  CHECK(json_str(retained_state(s, "hall"), "state") == "signed_out");
}

// --- tenant policy ------------------------------------------------------------------------------

TEST_CASE(
    "tenant policy: security defaults refuse the device code: blocked with policy and no retry") {
  Scenario s(with_method("device_code"));
  wait_started(s);
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 530035));
  const auto since = s.display.mark();
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  CHECK(json_str(reply, "error").find("security defaults") != std::string::npos);
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "policy") == "security_defaults");
  CHECK(error["retry_in"].IsNull());
  const auto description = json_str(error, "description");
  CHECK(description.find("AADSTS530035") != std::string::npos);
  CHECK(description.find("turn security defaults off") != std::string::npos);
  CHECK(description.find("browser sign-in") != std::string::npos);
  auto out = s.wait_event("kitchen", "signed_out", since).json();
  CHECK(json_str(out, "reason") == "blocked");
  const auto state = retained_state(s);
  CHECK(json_str(state, "reason") == "blocked");
  REQUIRE(state["error"].IsObject());
  CHECK(json_str(state["error"], "policy") == "security_defaults");
  CHECK(json_str(state["error"], "error") == "invalid_grant");
  CHECK(json_str(state["error"], "description") == description);
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"auth_error", "signed_out"});
  // Never retried by the agent.
  const long requests = s.simulator.counters().devicecode;
  s.display.request("status", R"({"account":"kitchen"})");
  CHECK(s.simulator.counters().devicecode == requests);
  CHECK(requests == 1);
  CHECK(sim_counter(s.simulator, "policy_refusals") == 1);
}

TEST_CASE(
    "tenant policy: under auto a refused device code continues as a browser sign-in at once") {
  Scenario s;
  wait_started(s);
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 530035, "access_denied"));
  const auto since = s.display.mark();
  const std::string url = browser_login(s, "");  // a plain login: the reply is the browser one
  CHECK(json_str(s.wait_state("kitchen", "pending", since).json()["code"], "method") == "browser");
  auto error = s.wait_event("kitchen", "auth_error", since);
  auto issued = s.wait_event("kitchen", "code_issued", since);
  CHECK(error.index < issued.index);
  CHECK(json_str(error.json(), "policy") == "security_defaults");
  CHECK(json_str(issued.json(), "method") == "browser");
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_out"));
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  s.wait_state("kitchen", "signed_in", since);
  CHECK(s.simulator.counters().devicecode == 1);

  // Later sign-ins of this account are browser sign-ins (until the agent restarts).
  CHECK(json_str(s.display.request("logout", R"({"account":"kitchen"})"), "status") == "ok");
  browser_login(s, "");
  CHECK(s.simulator.counters().devicecode == 1);
  check_clean_protocol(s);
}

TEST_CASE("tenant policy: Conditional Access at the poll after the user signed in under auto") {
  Scenario s;
  wait_started(s);
  s.simulator.set_tenant_policy(refusing("refuse_at_poll", 53003));
  const auto since = s.display.mark();
  s.simulator.approve(s.login());
  auto error = s.wait_event("kitchen", "auth_error", since, 20s).json();
  CHECK(json_str(error, "policy") == "conditional_access");
  CHECK(json_str(error, "description").find("Conditional Access") != std::string::npos);
  auto code = s.display.wait_for_json(
      kCode,
      [](const rapidjson::Value& v) { return v.IsObject() && json_str(v, "method") == "browser"; },
      10s, since);
  CHECK(json_str(retained_state(s), "state") == "pending");
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(json_str(code.json(), "sign_in_url"))),
                 "status") == "ok");
  s.wait_state("kitchen", "signed_in", since);
  check_clean_protocol(s);
}

TEST_CASE(
    "tenant policy: a device-code refresh token refused with AADSTS530036 deletes the tokens") {
  Scenario s(with_method("device_code"));
  wait_started(s);
  s.sign_in();
  wait_resources(s, 0);
  REQUIRE(has_token_file(*s.agent));
  TenantPolicy p;
  p.refuse_device_code_refresh = true;
  s.simulator.set_tenant_policy(p);
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK_FALSE(reply.HasMember("retry_in"));
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "policy") == "conditional_access");
  CHECK(error["retry_in"].IsNull());
  CHECK(json_str(error, "description").find("AADSTS530036") != std::string::npos);
  CHECK(json_str(s.wait_event("kitchen", "signed_out", since).json(), "reason") == "blocked");
  for (const auto& r : kitchen_resources())
    wait_cleared(s, s.topic("kitchen", "graph/" + r), since);
  CHECK_FALSE(has_token_file(*s.agent));
  const auto state = retained_state(s);
  CHECK(json_str(state, "reason") == "blocked");
  CHECK(json_str(state["error"], "policy") == "conditional_access");
  CHECK(sim_counter(s.simulator, "policy_refusals") == 1);
  CHECK(s.simulator.counters().rotated_token_reuse == 0);
}

TEST_CASE(
    "tenant policy: with sign_in auto a refused refresh token is followed by a browser sign-in "
    "at once") {
  Scenario s(with_method("auto", "  sign_in: auto\n"));
  wait_started(s);
  const std::size_t first = 0;  // sign_in: auto publishes the code at start
  auto code = s.display.wait_for_json(
      kCode, [](const rapidjson::Value& v) { return v.IsObject(); }, 15s, first);
  s.simulator.approve(json_str(code.json(), "user_code"));
  s.wait_state("kitchen", "signed_in", first);
  // The signed_in event follows auth/state: wait for it too, so it is not counted below.
  s.wait_event("kitchen", "signed_in", first);
  TenantPolicy p;
  p.refuse_device_code_refresh = true;
  s.simulator.set_tenant_policy(p);
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  auto browser = s.display.wait_for_json(
      kCode,
      [](const rapidjson::Value& v) { return v.IsObject() && json_str(v, "method") == "browser"; },
      10s, since);
  // The tokens are gone and the browser sign-in follows at once: auth_error, then code_issued
  // (method browser), and auth/state goes from signed_in to pending without a signed_out.
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "policy") == "conditional_access");
  auto issued = s.wait_event("kitchen", "code_issued", since).json();
  CHECK(json_str(issued, "method") == "browser");
  CHECK(events_since(s, "kitchen", since) == std::vector<std::string>{"auth_error", "code_issued"});
  // Straight from signed_in to pending: never signed_out in between.
  auto pending = s.display
                     .wait_for_json(
                         "graph2mqtt/kitchen/auth/state",
                         [](const rapidjson::Value& v) { return v["code"].IsObject(); }, 10s, since)
                     .json();
  CHECK(json_str(pending, "state") == "pending");
  CHECK(json_str(pending["code"], "method") == "browser");
  CHECK(pending["reason"].IsNull());
  for (const auto& m : messages_since(s, "graph2mqtt/kitchen/auth/state", since)) {
    CHECK(json_str(parse_json(m.payload), "state") != "signed_out");
  }
  CHECK_FALSE(has_token_file(*s.agent));
  for (const auto& r : kitchen_resources())
    wait_cleared(s, s.topic("kitchen", "graph/" + r), since);
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(json_str(browser.json(), "sign_in_url"))),
                 "status") == "ok");
  s.wait_state("kitchen", "signed_in", since);
}

TEST_CASE(
    "tenant policy: after a refusal at refresh under sign_in command the next login is a "
    "browser sign-in") {
  Scenario s;  // sign_in_method auto, sign_in command
  s.sign_in();
  TenantPolicy p;
  p.refuse_device_code_refresh = true;
  s.simulator.set_tenant_policy(p);
  const auto since = s.display.mark();
  s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(s.wait_event("kitchen", "signed_out", since).json(), "reason") == "blocked");
  CHECK(json_str(retained_state(s), "state") == "signed_out");  // nothing starts by itself
  const long requests = s.simulator.counters().devicecode;
  const std::string url = browser_login(s, "");  // a plain login
  CHECK(s.simulator.counters().devicecode == requests);
  CHECK(json_str(complete(s, s.simulator.browser_sign_in(url)), "status") == "ok");
  s.wait_state("kitchen", "signed_in", since);
  check_clean_protocol(s);
}

TEST_CASE(
    "tenant policy: the switch to the browser lasts until a restart, then device code again") {
  Scenario s;
  wait_started(s);
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 530035));
  browser_login(s, "");
  CHECK(s.simulator.counters().devicecode == 1);
  REQUIRE(s.agent->stop() == 0);
  REQUIRE(s.simulator.post("/_sim/policy/clear").status == 200);  // security defaults turned off
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  auto reply = s.display.request("login", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"]["code"], "method") == "device_code");
  CHECK(s.simulator.counters().devicecode == 2);
}

// --- the terminal -------------------------------------------------------------------------------

TEST_CASE("terminal login --browser prints the sign-in address and reads the final address") {
  Scenario s;
  wait_started(s);
  auto process = run_terminal_login(s, {"login", "kitchen", "--browser"});
  const std::string url = printed_sign_in_url(process);
  const std::string address = s.simulator.browser_sign_in(url);
  {
    std::ofstream in(stdin_fifo(s));
    in << "not the address\n" << address << "\n";
  }
  const auto status = process.wait_exit(20s);
  REQUIRE(status);
  const auto output = process.log_text();
  CHECK_MESSAGE(*status == 0, output);
  CHECK(output.find("Signed in as Adele Vance") != std::string::npos);
  CHECK(output.find("Paste the address again") != std::string::npos);
  CHECK(output.find(param(address, "code")) == std::string::npos);  // the code is never printed
  CHECK(has_token_file(*s.agent));
  CHECK(s.simulator.counters().devicecode == 0);
  check_clean_protocol(s);
  // The agent then starts signed in from that file.
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_state("kitchen", "signed_in", since);
}

TEST_CASE("terminal login: under auto a policy refusal switches to the browser sign-in") {
  Scenario s;
  wait_started(s);
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 53003));
  auto process = run_terminal_login(s, {"login", "kitchen"});
  const std::string url = printed_sign_in_url(process);
  const auto output = process.log_text();
  CHECK(output.find("Conditional Access") != std::string::npos);
  CHECK(output.find("Switching to the browser sign-in") != std::string::npos);
  {
    std::ofstream in(stdin_fifo(s));
    in << s.simulator.browser_sign_in(url) << "\n";
  }
  const auto status = process.wait_exit(20s);
  REQUIRE(status);
  CHECK_MESSAGE(*status == 0, process.log_text());
}

TEST_CASE("terminal login --browser: end of input without an address exits 1 and stores nothing") {
  Scenario s;
  wait_started(s);
  REQUIRE(s.agent->stop() == 0);
  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen", "--browser"}, 20s, &output) == 1);
  CHECK(output.find("No address was given") != std::string::npos);
  CHECK_FALSE(has_token_file(*s.agent));
}

TEST_CASE("terminal login --browser: a user who declines is exit 1 and nothing is stored") {
  Scenario s;
  wait_started(s);
  auto process = run_terminal_login(s, {"login", "kitchen", "--browser"});
  const std::string url = printed_sign_in_url(process);
  {
    std::ofstream in(stdin_fifo(s));
    in << s.simulator.browser_decline(url) << "\n";
  }
  CHECK(process.wait_exit(20s) == 1);
  CHECK(process.log_text().find("declined") != std::string::npos);
  CHECK_FALSE(has_token_file(*s.agent));
}

TEST_CASE("terminal login --browser: a redemption that fails in transit asks for a new address") {
  Scenario s;
  wait_started(s);
  auto process = run_terminal_login(s, {"login", "kitchen", "--browser"});
  const std::string url = printed_sign_in_url(process);
  s.simulator.fail(R"({"endpoint":"token","count":1,"status":503})");
  std::ofstream in(stdin_fifo(s));
  in << s.simulator.browser_sign_in(url) << "\n" << std::flush;
  REQUIRE(poll_until(
      [&] { return process.log_text().find("Paste the address again") != std::string::npos; },
      20s));
  CHECK(process.log_text().find("could not be redeemed") != std::string::npos);
  in << s.simulator.browser_sign_in(url) << "\n" << std::flush;  // the user signs in again
  const auto status = process.wait_exit(20s);
  REQUIRE(status);
  CHECK_MESSAGE(*status == 0, process.log_text());
  CHECK(has_token_file(*s.agent));
  check_clean_protocol(s);  // the first code was never sent twice
}

TEST_CASE("terminal login: security defaults with sign_in_method device_code is exit 1, says why") {
  Scenario s(with_method("device_code"));
  wait_started(s);
  REQUIRE(s.agent->stop() == 0);
  s.simulator.set_tenant_policy(refusing("refuse_at_request", 530035));
  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 1);
  CHECK(output.find("security defaults") != std::string::npos);
  CHECK(output.find("AADSTS530035") != std::string::npos);
  CHECK(output.find("browser sign-in") != std::string::npos);  // what can be done instead
  CHECK_FALSE(has_token_file(*s.agent));
  CHECK(s.simulator.counters().devicecode == 1);  // never retried
}

TEST_CASE("secrets: a browser sign-in's code and pasted address appear in no log line or payload") {
  Scenario s;
  wait_started(s);
  const std::string url = browser_login(s);
  const std::string refused = s.simulator.browser_sign_in(url);
  s.simulator.expire_authorization_codes();
  CHECK(json_str(complete(s, refused), "status") == "error");  // a failed redemption is logged
  const std::string address = s.simulator.browser_sign_in(url);
  CHECK(json_str(complete(s, address), "status") == "ok");
  s.wait_state("kitchen", "signed_in");
  REQUIRE(s.agent->stop() == 0);
  s.display.sync();
  const std::string log = s.agent->log_text();
  CHECK(log.find("debug") != std::string::npos);  // the audit ran at debug level
  for (const std::string& pasted : {refused, address}) {
    const std::string code = param(pasted, "code");
    REQUIRE(code.size() >= 16);
    CHECK(log.find(code) == std::string::npos);
    for (const auto& m : s.display.messages("#")) {
      if (m.topic.find("/bridge/request/") != std::string::npos) continue;  // the display's own
      CHECK_MESSAGE(m.payload.find(code) == std::string::npos, m.describe());
    }
  }
  // The PKCE verifiers the simulator received: in no log line and no payload either.
  const auto codes = parse_json(s.simulator.get("/_sim/authorization_codes").body);
  std::size_t verifiers = 0;
  for (const auto& c : codes["authorization_codes"].GetArray()) {
    const std::string verifier = json_str(c, "verifier_seen");
    if (verifier.empty()) continue;
    ++verifiers;
    CHECK(verifier.size() == 43);  // 32 random bytes, base64url
    CHECK(log.find(verifier) == std::string::npos);
    for (const auto& m : s.display.messages("#")) {
      CHECK_MESSAGE(m.payload.find(verifier) == std::string::npos, m.describe());
    }
  }
  CHECK(verifiers == 2);
  check_no_secrets(s);
}
