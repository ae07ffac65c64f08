// Reloading the configuration (SIGHUP) account by account (docs/operating.md "Changing the
// configuration: reload"): what did not change keeps running, tokens and pending sign-ins
// included; a changed account restarts; a removed one is cleared away; a change to a global
// setting still restarts everything.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstring>

#include "scenario.h"

using namespace g2m::test;

namespace {

const std::string kHall = "hall:\n  client_id: 00000000-0000-0000-0000-000000000002\n" +
                          std::string("  graph_allow: [/me]\n") +
                          "  resources:\n    me: { path: \"/me?$select=displayName,mail\", "
                          "every: 1h }\n";

ScenarioOptions two_accounts(const std::string& extra = "") {
  ScenarioOptions o;
  o.accounts = kitchen_account() + kHall;
  o.extra = extra;
  return o;
}

// Rewrites the config with `accounts` (and `mqtt_extra`), sends SIGHUP and returns the display's
// mark from just before.
std::size_t reload(Scenario& s, const std::string& accounts,
                   std::optional<std::string> mqtt_extra = std::nullopt) {
  auto changed = s.config;
  changed.accounts = accounts;
  if (mqtt_extra) changed.mqtt_extra = *mqtt_extra;
  s.agent->write_config(changed);
  const auto since = s.display.mark();
  s.agent->process().terminate(SIGHUP);
  return since;
}

// Waits for the agent's log to say `text` (a reload is applied when it says so).
void wait_log(Scenario& s, const std::string& text) {
  CHECK_MESSAGE(
      poll_until([&] { return s.agent->log_text().find(text) != std::string::npos; }, 15s),
      "the agent never logged: " << text << "\n"
                                 << s.agent->log_text());
}

// bridge/info after `since` listing `count` accounts: the reload has been applied.
Message wait_info(Scenario& s, std::size_t count, std::size_t since) {
  return s.display.wait_for_json(
      "graph2mqtt/bridge/info",
      [count](const rapidjson::Value& v) {
        return v.HasMember("accounts") && v["accounts"].Size() == count;
      },
      15s, since);
}

bool offline_since(Scenario& s, std::size_t since) {
  for (const auto& m : s.display.messages("graph2mqtt/bridge/state")) {
    if (m.index >= since && m.payload.find("offline") != std::string::npos) return true;
  }
  return false;
}

std::vector<std::string> events_since(Scenario& s, const std::string& account, std::size_t since) {
  std::vector<std::string> out;
  for (const auto& m : s.display.messages("graph2mqtt/" + account + "/events")) {
    if (m.index < since) continue;
    const auto v = try_parse_json(m.payload);
    out.push_back(json_str(v, "event") + ":" + json_str(v, "reason"));
  }
  return out;
}

std::string user_code_now(Scenario& s, const std::string& account) {
  const auto code = s.display.retained_value(s.topic(account, "auth/code"));
  if (!code || code->empty()) return "";
  return json_str(parse_json(*code), "user_code");
}

}  // namespace

TEST_CASE("reload: a pending sign-in survives a SIGHUP that adds an account") {
  Scenario s;
  const auto start = s.display.mark();
  const std::string code = s.login("kitchen");
  const auto since = reload(s, kitchen_account() + kHall);
  wait_info(s, 2, since);
  s.wait_state("hall", "signed_out", since);
  wait_log(s, "account by account: 1 added, 0 removed, 0 changed, 1 unchanged");
  s.display.sync();
  // The same code still waits for the user, and the same sign-in completes.
  CHECK(user_code_now(s, "kitchen") == code);
  CHECK(events_since(s, "kitchen", since).empty());
  const auto approved = s.display.mark();
  s.simulator.approve(code);
  s.wait_state("kitchen", "signed_in", approved);
  s.wait_event("kitchen", "signed_in", approved);
  for (const auto& e : events_since(s, "kitchen", since)) CHECK(e != "signed_out:shutdown");
  CHECK_FALSE(offline_since(s, start));
  // The added account answers commands.
  auto reply = s.display.request("status", R"({"account":"hall"})");
  CHECK(json_str(reply, "status") == "ok");
}

TEST_CASE("reload: changing one account's settings restarts that account only") {
  Scenario s(two_accounts());
  s.sign_in("hall");
  s.wait_event("hall", "signed_in");
  s.display.wait_for("graph2mqtt/hall/graph/me",
                     [](const Message& m) { return !m.payload.empty(); });
  const auto before = s.simulator.counters();
  const std::string code = s.login("kitchen");
  const auto start = s.display.mark();
  // kitchen loses its presence resource and gains renew_code; hall is as it was.
  const std::string kitchen = std::string("kitchen:\n") + "  client_id: " + kClientId + "\n" +
                              "  scopes: [User.Read, Presence.Read]\n  graph_allow: [/me]\n" +
                              "  renew_code: true\n  resources:\n" +
                              "    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n";
  const auto since = reload(s, kitchen + kHall);
  // kitchen's pending sign-in ends as at a shutdown, then kitchen starts again.
  auto ended = s.wait_state("kitchen", "signed_out", since);
  CHECK(json_str(ended.json(), "reason") == "shutdown");
  auto ended_event = s.wait_event("kitchen", "signed_out", since);
  CHECK(json_str(ended_event.json(), "reason") == "shutdown");
  s.display.wait_for(
      s.topic("kitchen", "auth/code"), [](const Message& m) { return m.payload.empty(); }, 10s,
      since);
  wait_log(s, "account by account: 0 added, 0 removed, 1 changed, 1 unchanged");
  wait_info(s, 2, since);
  s.display.sync();
  // The resource kitchen no longer has is cleared.
  CHECK(s.display.retained_value("graph2mqtt/kitchen/graph/presence") == std::nullopt);
  // hall published nothing at all: same tokens, same state, no event.
  for (const auto& m : s.display.messages("graph2mqtt/hall/#")) {
    CHECK_MESSAGE(m.index < since, "hall published " << m.describe());
  }
  CHECK_FALSE(offline_since(s, start));
  auto hall = s.display.request("status", R"({"account":"hall"})");
  CHECK(json_str(hall["data"], "state") == "signed_in");
  auto graph = s.display.request("graph", R"({"account":"hall","path":"/me"})");
  CHECK(json_str(graph, "status") == "ok");
  CHECK(graph["data"]["status"].GetInt() == 200);
  // hall's tokens were not refreshed: the same access token still works.
  CHECK(s.simulator.counters().refresh == before.refresh);
  // The restarted kitchen signs in with a new code.
  const auto again = s.display.mark();
  const std::string fresh = s.login("kitchen");
  CHECK(fresh != code);
  s.simulator.approve(fresh);
  s.wait_state("kitchen", "signed_in", again);
}

TEST_CASE("reload: a removed account is stopped and its retained topics cleared") {
  Scenario s(two_accounts("homeassistant:\n  enabled: true\n  prefix: homeassistant\n"));
  s.display.wait_for_json("homeassistant/device/graph2mqtt_hall/config",
                          [](const rapidjson::Value& v) { return v.HasMember("components"); });
  s.sign_in("hall");
  s.display.wait_for("graph2mqtt/hall/graph/me",
                     [](const Message& m) { return !m.payload.empty(); });
  s.login("kitchen");
  const auto since = reload(s, kHall);
  wait_info(s, 1, since);
  auto ended = s.wait_event("kitchen", "signed_out", since);
  CHECK(json_str(ended.json(), "reason") == "shutdown");
  s.display.wait_for(
      "homeassistant/device/graph2mqtt_kitchen/config",
      [](const Message& m) { return m.payload.empty(); }, 15s, since);
  s.display.sync();
  // Nothing of kitchen's is left on the broker, nor its discovery config.
  const auto left = s.display.fetch_retained("graph2mqtt/kitchen/#");
  for (const auto& m : left) CHECK_MESSAGE(false, "still retained: " << m.describe());
  CHECK(s.display.retained_value("homeassistant/device/graph2mqtt_kitchen/config") == std::nullopt);
  // hall is untouched, its discovery config still there.
  CHECK(s.display.retained_value("homeassistant/device/graph2mqtt_hall/config").has_value());
  auto hall = s.display.request("status", R"({"account":"hall"})");
  CHECK(json_str(hall["data"], "state") == "signed_in");
  auto gone = s.display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(gone, "status") == "error");
  // Added back, it gets its discovery config again.
  const auto back = reload(s, kitchen_account() + kHall);
  wait_info(s, 2, back);
  s.display.wait_for_json(
      "homeassistant/device/graph2mqtt_kitchen/config",
      [](const rapidjson::Value& v) { return v.HasMember("components"); }, 15s, back);
  s.wait_state("kitchen", "signed_out", back);
}

TEST_CASE("reload: a SIGHUP with a file that is not valid leaves every account running") {
  Scenario s;
  const auto start = s.display.mark();
  const std::string code = s.login("kitchen");
  const auto since = reload(s, "kitchen:\n  client_id: not-a-guid\n");
  wait_log(s, "is not valid; keeping the running configuration");
  CHECK(s.agent->log_text().find("accounts.kitchen.client_id") != std::string::npos);
  s.display.sync();
  CHECK(user_code_now(s, "kitchen") == code);
  CHECK(events_since(s, "kitchen", since).empty());
  const auto approved = s.display.mark();
  s.simulator.approve(code);
  s.wait_state("kitchen", "signed_in", approved);
  CHECK_FALSE(offline_since(s, start));
  CHECK(s.agent->running());
}

TEST_CASE("reload: a changed mqtt setting still restarts every account") {
  Scenario s;
  s.login("kitchen");
  const auto since = reload(s, kitchen_account(), std::string("keepalive: 30s\n"));
  auto ended = s.wait_state("kitchen", "signed_out", since);
  CHECK(json_str(ended.json(), "reason") == "shutdown");
  const auto offline = s.display.wait_for(
      "graph2mqtt/bridge/state",
      [](const Message& m) { return m.payload.find("offline") != std::string::npos; }, 10s, since);
  s.wait_online(offline.index + 1);
  wait_log(s, "mqtt settings changed; restarting every account");
  auto reply = s.display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
}

TEST_CASE("reload: --check-config, which ExecReload runs first, refuses the file a reload would") {
  Scenario s;
  auto broken = s.config;
  broken.accounts = "kitchen:\n  client_id: not-a-guid\n";
  s.agent->write_config(broken);
  auto check = s.agent->run({"--check-config"});
  CHECK(check.wait_exit(10s) == 2);
  CHECK(check.log_text().find("accounts.kitchen.client_id") != std::string::npos);
}

TEST_CASE("reload: an account removed while an OpenID discovery is under way stops safely") {
  // An issuer that accepts connections and never answers: the discovery the signing-in account
  // waits for stays under way until identity.timeout.
  SilentListener listener;
  const std::string issuer = "https://127.0.0.1:" + std::to_string(listener.port());

  ScenarioOptions o;
  o.identity_extra = "provider: oidc\nissuer: " + issuer + "\ntimeout: 2s\n";
  o.accounts = "kitchen:\n  client_id: app-kitchen\n  sign_in: auto\n" +
               std::string("hall:\n  client_id: app-hall\n");
  Scenario s(o);
  auto discoveries = [&] {
    std::size_t n = 0;
    const std::string log = s.agent->log_text();
    for (auto at = log.find("discovery: GET"); at != std::string::npos;
         at = log.find("discovery: GET", at + 1)) {
      ++n;
    }
    return n;
  };
  REQUIRE(poll_until([&] { return discoveries() >= 1; }, 10s));
  const std::size_t before = discoveries();
  const auto since = reload(s, "hall:\n  client_id: app-hall\n");
  wait_info(s, 1, since);
  s.display.sync();
  for (const auto& m : s.display.fetch_retained("graph2mqtt/kitchen/#")) {
    CHECK_MESSAGE(false, "still retained: " << m.describe());
  }
  // The discovery ends (identity.timeout) with the removed account's callback still waiting in
  // the resolver; that account is gone at once, and its callback must see it (under ASan a call
  // into the destroyed sign-in is a crash here).
  wait_log(s, "/.well-known/openid-configuration -> ");
  CHECK(discoveries() == before);  // nobody else waits for it: no new discovery
  auto hall = s.display.request("status", R"({"account":"hall"})");
  CHECK(json_str(hall, "status") == "ok");
  CHECK(s.agent->stop(5s) == 0);
}

namespace {

// systemd's side of NOTIFY_SOCKET: an abstract datagram socket the agent's sd_notify writes to.
class NotifySocket {
 public:
  NotifySocket() : name_(unique_id("g2m-notify")) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name_.data(), name_.size());  // sun_path[0] = 0: abstract
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  std::string env() const { return "@" + name_; }
  // Every datagram received so far and within `timeout` until one contains `text`.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& m : received) {
        if (m.find(text) != std::string::npos) return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) received.emplace_back(buffer, static_cast<std::size_t>(n));
    }
  }
  std::vector<std::string> received;

 private:
  std::string name_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE(
    "reload: systemd hears RELOADING=1 then READY=1, and no STOPPING, at a per-account reload") {
  Scenario s;
  NotifySocket notify;
  s.agent->stop();
  auto config = s.config;
  config.env["NOTIFY_SOCKET"] = notify.env();
  const auto restarted = s.display.mark();
  s.agent = std::make_unique<Agent>(config);
  s.config = config;
  s.wait_online(restarted);
  REQUIRE(notify.wait_for("READY=1", 15s));
  notify.received.clear();
  const auto since = reload(s, kitchen_account() + kHall);
  wait_info(s, 2, since);
  REQUIRE(notify.wait_for("READY=1", 15s));
  std::string all;
  for (const auto& m : notify.received) all += m + "|";
  CAPTURE(all);
  const auto reloading = all.find("RELOADING=1");
  REQUIRE(reloading != std::string::npos);
  CHECK(all.find("READY=1", reloading) != std::string::npos);
  CHECK(all.find("STOPPING=1") == std::string::npos);
  CHECK_FALSE(offline_since(s, since));
}

TEST_CASE("reload: an added account gets its derived topics, a removed one loses them") {
  ScenarioOptions o;
  o.mqtt_extra = "plain_topics: true\n";
  Scenario s(o);
  s.display.wait_for("graph2mqtt/kitchen/auth/state/state",
                     [](const Message& m) { return m.payload == "signed_out"; });
  s.login("kitchen");
  s.display.wait_for("graph2mqtt/kitchen/auth/qr",
                     [](const Message& m) { return !m.payload.empty(); });
  // kitchen out, hall in: the same mqtt settings (plain_topics stays on).
  auto changed = s.config;
  changed.accounts = kHall;
  s.agent->write_config(changed);
  const auto since = s.display.mark();
  s.agent->process().terminate(SIGHUP);
  wait_info(s, 1, since);
  s.display.wait_for(
      "graph2mqtt/hall/auth/state/state",
      [](const Message& m) { return m.payload == "signed_out"; }, 10s, since);
  s.display.sync();
  for (const auto& m : s.display.fetch_retained("graph2mqtt/kitchen/#")) {
    CHECK_MESSAGE(false, "still retained: " << m.describe());
  }
  const std::string code = s.login("hall");
  auto user_code = s.display.wait_for(
      "graph2mqtt/hall/auth/code/user_code", [](const Message& m) { return !m.payload.empty(); },
      10s, since);
  CHECK(user_code.payload == code);
  s.display.wait_for(
      "graph2mqtt/hall/auth/qr", [](const Message& m) { return !m.payload.empty(); }, 10s, since);
}

TEST_CASE("reload: a new log.level applies at once, without restarting an account") {
  Scenario s;
  // Start again at info: the debug lines (a sign-in's phases) are not written.
  s.agent->stop();
  s.config.log_level = "info";
  s.agent->write_config(s.config);
  const auto restarted = s.display.mark();
  s.agent->start();
  s.wait_online(restarted);
  const std::string code = s.login("kitchen");
  const std::string phase_line = "kitchen: sign-in: ";
  CHECK(s.agent->log_text().find(phase_line) == std::string::npos);
  auto debug = s.config;
  debug.log_level = "debug";
  s.agent->write_config(debug);
  const auto since = s.display.mark();
  s.agent->process().terminate(SIGHUP);
  wait_log(s, "SIGHUP: log level now debug");
  CHECK(events_since(s, "kitchen", since).empty());
  s.simulator.approve(code);
  s.wait_state("kitchen", "signed_in", since);
  // The same sign-in went on, now logging its phases.
  CHECK(s.agent->log_text().find(phase_line) != std::string::npos);
}

TEST_CASE("reload: a command under way on an account the reload restarts still gets a reply") {
  Scenario s;
  s.sign_in("kitchen");
  s.display.wait_for("graph2mqtt/kitchen/graph/me",
                     [](const Message& m) { return !m.payload.empty(); });
  s.display.wait_for("graph2mqtt/kitchen/graph/presence",
                     [](const Message& m) { return !m.payload.empty(); });
  // The next Graph answer for /me comes late: the `graph` request is still under way at the
  // reload.
  s.simulator.fail(R"({"endpoint":"/v1.0/me","count":1,"delay_ms":5000})");
  const long graph_before = s.simulator.counters().graph;
  const auto asked = s.display.mark();
  s.display.publish("graph2mqtt/bridge/request/graph",
                    R"({"account":"kitchen","path":"/me","transaction":"under-way"})");
  REQUIRE(poll_until([&] { return s.simulator.counters().graph > graph_before; }, 10s));
  reload(s, kitchen_account("  renew_code: true\n"));
  auto reply = s.display.wait_for_json(
      "graph2mqtt/bridge/response/graph",
      [](const rapidjson::Value& v) { return json_str(v, "transaction") == "under-way"; }, 4s,
      asked);
  CHECK(json_str(reply.json(), "status") == "error");
  CHECK(json_str(reply.json(), "error").find("restarted") != std::string::npos);
  // The restarted account is signed in again from its token file.
  s.wait_state("kitchen", "signed_in", asked);
}
