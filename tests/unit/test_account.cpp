// One Account on the fake clock, over a fake broker and a fake HTTP: what its sign-ins publish
// where the real clock would make an integration test wait (a browser sign-in's 15 minutes).
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "account/account.h"
#include "config/config.h"
#include "identity/token_store.h"
#include "json/json.h"
#include "mqtt_rig.h"
#include "recording_http.h"
#include "temp_dir.h"

using namespace g2m;
using namespace std::chrono_literals;

namespace {

const char* const kDeviceCode =
    R"({"device_code":"DC-secret","user_code":"E4AAFX9VN","verification_uri":)"
    R"("https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"Go"})";

Config config_with(const std::string& account_lines) {
  return parse_config(
      "mqtt:\n  server: mqtt://localhost\nidentity:\n  authority: http://127.0.0.1:9\n  graph: "
      "http://127.0.0.1:9/v1.0\naccounts:\n  kitchen:\n    client_id: "
      "3f2c1a9e-5b7d-4c8e-9a1f-2d3e4f5a6b7c\n" +
          account_lines,
      "config.yaml");
}

struct AccountRig : test::MqttRig {
  explicit AccountRig(const std::string& account_lines)
      : cfg(config_with(account_lines)),
        store(dir.path() / "tokens"),
        resolver(platform_options(cfg), http, log),
        account(cfg.accounts[0],
                AccountContext{loop, http, session, store, resolver, log, cfg, "graph2mqtt"}) {
    store.prepare();
    session.start([](MqttMessage) {}, {});
    client.handlers.connected({});
    loop.run_once(0ms);
    account.start();
  }

  // Runs the loop until a request is pending, no timer is left or `up_to` has passed.
  void run_until_request(Millis up_to) {
    const auto until = clock.steady() + up_to;
    while (clock.steady() < until && !http.has_pending() && loop.timer_count() > 0) {
      loop.run_once(std::chrono::duration_cast<Millis>(until - clock.steady()));
    }
  }

  // Answers every poll with authorization_pending for `span`.
  void keep_pending(Millis span) {
    const auto until = clock.steady() + span;
    while (clock.steady() < until) {
      run_until_request(std::chrono::duration_cast<Millis>(until - clock.steady()));
      if (!http.has_pending() || http.oldest().url.find("/token") == std::string::npos) return;
      http.answer(400, R"({"error":"authorization_pending"})");
    }
  }

  // The events published since message `from`, as (event, payload).
  std::vector<std::pair<std::string, std::string>> events(std::size_t from = 0) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (std::size_t i = from; i < client.sent.size(); ++i) {
      if (client.sent[i].topic != "graph2mqtt/kitchen/events") continue;
      auto doc = json::parse_object(client.sent[i].payload);
      REQUIRE(doc);
      out.emplace_back(json::get_string(*doc, "event").value_or(""), client.sent[i].payload);
    }
    return out;
  }
  std::vector<std::string> event_names(std::size_t from = 0) const {
    std::vector<std::string> names;
    for (const auto& [name, payload] : events(from)) names.push_back(name);
    return names;
  }
  std::size_t devicecode_requests() const {
    std::size_t n = 0;
    for (const auto& r : http.all()) n += r.url.find("/devicecode") != std::string::npos;
    return n;
  }
  // The reply so far (none while the device code is still being requested); a later reply
  // lands in `last_reply`.
  std::optional<CommandResult> login(std::optional<SignInMethod> method) {
    last_reply.reset();
    account.login(false, method, [this](CommandResult r) { last_reply = std::move(r); });
    return last_reply;
  }

  std::optional<CommandResult> last_reply;
  test::TempDir dir;
  Config cfg;
  TokenStore store;
  test::RecordingHttp http;
  EndpointResolver resolver;
  Account account;
};

}  // namespace

TEST_CASE(
    "account: renew_code does not renew an expired browser sign-in, even one login asked for") {
  AccountRig rig("    renew_code: true\n");
  const auto from = rig.client.sent.size();
  auto reply = rig.login(SignInMethod::browser);
  REQUIRE(reply);
  CHECK(reply->ok);
  CHECK(rig.account.state() == AuthState::pending);
  rig.run_until_request(16min);
  CHECK(rig.event_names(from) ==
        std::vector<std::string>{"code_issued", "code_expired", "signed_out"});
  const auto expired = rig.events(from)[1].second;
  CHECK(expired.find(R"("renewing":false)") != std::string::npos);
  CHECK(rig.account.state() == AuthState::signed_out);
  CHECK_FALSE(rig.account.signing_in());
  CHECK(rig.devicecode_requests() == 0);  // no device code started in its place
  CHECK(rig.http.all().empty());
}

TEST_CASE("account: renew_code renews an expired device code at once") {
  AccountRig rig("    renew_code: true\n");
  const auto from = rig.client.sent.size();
  CHECK_FALSE(rig.login(std::nullopt));  // answered when the code is out
  REQUIRE(rig.http.has_pending());
  rig.http.answer(200, kDeviceCode);
  REQUIRE(rig.last_reply);
  CHECK(rig.last_reply->ok);
  rig.keep_pending(901s);
  CHECK(rig.event_names(from) == std::vector<std::string>{"code_issued", "code_expired"});
  CHECK(rig.events(from)[1].second.find(R"("renewing":true)") != std::string::npos);
  CHECK(rig.account.state() == AuthState::pending);
  CHECK(rig.devicecode_requests() == 2);
}

TEST_CASE("account: a login while a browser sign-in waits answers with that sign-in") {
  AccountRig rig("");
  auto first = rig.login(SignInMethod::browser);
  REQUIRE(first);
  REQUIRE(first->ok);
  auto second = rig.login(std::nullopt);
  REQUIRE(second);
  CHECK(second->ok);
  CHECK(second->data_json == first->data_json);  // the same sign_in_url, not a new sign-in
  CHECK(rig.event_names() == std::vector<std::string>{"code_issued"});
  CHECK(rig.http.all().empty());
}
