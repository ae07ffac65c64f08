// plan_reload: which accounts a reload restarts, and when it has to restart them all.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_compare.h"

using g2m::Config;
using g2m::parse_config;
using g2m::plan_reload;
using g2m::ReloadPlan;
namespace fs = std::filesystem;

namespace {

const std::string kKitchen =
    "  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000001\n"
    "    resources:\n      me: { path: /me, every: 1h }\n";
const std::string kHall = "  hall:\n    client_id: 00000000-0000-0000-0000-000000000002\n";

Config config(const std::string& accounts, const std::string& top = "") {
  return parse_config("mqtt:\n  server: mqtt://localhost\n" + top + "accounts:\n" + accounts,
                      "/etc/graph2mqtt/config.yaml");
}

ReloadPlan plan(const std::string& before, const std::string& after,
                const std::string& top_before = "", const std::string& top_after = "") {
  return plan_reload(config(before, top_before), config(after, top_after));
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("reload plan: the same file changes nothing") {
  const auto p = plan(kKitchen + kHall, kKitchen + kHall);
  CHECK_FALSE(p.full_restart());
  CHECK_FALSE(p.log_level_changed);
  CHECK(p.unchanged == Names{"kitchen", "hall"});
  CHECK(p.added.empty());
  CHECK(p.removed.empty());
  CHECK(p.changed.empty());
}

TEST_CASE("reload plan: accounts added, removed, changed and moved") {
  const std::string kitchen_changed =
      "  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000001\n"
      "    resources:\n      me: { path: /me, every: 2h }\n";
  const std::string office = "  office:\n    client_id: 00000000-0000-0000-0000-000000000003\n";
  const auto p = plan(kKitchen + kHall, office + kitchen_changed);
  CHECK_FALSE(p.full_restart());
  CHECK(p.added == Names{"office"});
  CHECK(p.removed == Names{"hall"});
  CHECK(p.changed == Names{"kitchen"});
  CHECK(p.unchanged.empty());
  // The order of the accounts in the file is no setting of theirs.
  CHECK(plan(kKitchen + kHall, kHall + kKitchen).unchanged == Names{"hall", "kitchen"});
}

TEST_CASE("reload plan: every setting of an account counts") {
  const std::string head = "  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000001\n";
  const std::string me = "    resources:\n      me: { path: /me, every: 1h }\n";
  for (const std::string extra : {
           "    tenant: organizations\n",
           "    scopes: [User.Read, Presence.Read]\n",
           "    sign_in: auto\n",
           "    sign_in_method: device_code\n",
           "    redirect_uri: https://login.microsoftonline.com/common/oauth2/nativeclient2\n",
           "    renew_code: true\n",
           "    graph_allow: [/me]\n",
       }) {
    CAPTURE(extra);
    CHECK(plan(head + me, head + extra + me).changed == Names{"kitchen"});
  }
  for (const std::string resources : {
           "    resources:\n      me: { path: /me/presence, every: 1h }\n",
           "    resources:\n      me: { path: /me, every: 1h, max_pages: 2 }\n",
           "    resources:\n      me: { path: /me, every: 1h, ha_state: x }\n",
           "    resources:\n      me: { path: /me, every: 1h, fields: { n: /displayName } }\n",
           "    resources:\n      you: { path: /me, every: 1h }\n",
           "    resources:\n      me: { path: /me, every: 1h }\n      you: { path: /me, every: 1h "
           "}\n",
       }) {
    CAPTURE(resources);
    CHECK(plan(head + me, head + resources).changed == Names{"kitchen"});
  }
  const auto other_app =
      plan(head + me, "  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000009\n" + me);
  CHECK(other_app.changed == Names{"kitchen"});
  CHECK_FALSE(other_app.full_restart());
}

TEST_CASE("reload plan: a global setting restarts every account") {
  struct Case {
    std::string top_after;
    std::string reason;
  };
  for (const auto& c : std::vector<Case>{
           {"identity:\n  timeout: 10s\n", "identity settings"},
           {"identity:\n  max_pending_sign_ins: 3\n", "identity settings"},
           {"storage:\n  dir: /var/lib/elsewhere\n", "storage.dir"},
           {"homeassistant:\n  enabled: true\n", "homeassistant settings"},
           {"homeassistant:\n  prefix: ha\n", "homeassistant settings"},
       }) {
    CAPTURE(c.top_after);
    const auto p = plan(kKitchen, kKitchen, "", c.top_after);
    CHECK(p.full_restart());
    CHECK(p.restart_reasons == Names{c.reason});
  }
  // mqtt.* comes first in the file: written with the server.
  const auto mqtt = plan_reload(
      config(kKitchen),
      parse_config("mqtt:\n  server: mqtt://localhost\n  keepalive: 30s\naccounts:\n" + kKitchen,
                   "/etc/graph2mqtt/config.yaml"));
  CHECK(mqtt.restart_reasons == Names{"mqtt settings"});
}

TEST_CASE("reload plan: log.level alone is applied live") {
  const auto p = plan(kKitchen, kKitchen, "", "log:\n  level: debug\n");
  CHECK_FALSE(p.full_restart());
  CHECK(p.log_level_changed);
  CHECK(p.unchanged == Names{"kitchen"});
}

TEST_CASE("reload plan: secrets compare by their bytes, not by the copy that holds them") {
  char pattern[] = "/tmp/g2m-compare-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const fs::path dir = pattern;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write);
  };
  write("mqtt.secret", "one\n");
  write("client.secret", "s1\n");
  const std::string top = "identity:\n  provider: oidc\n  issuer: https://id.example.com\n";
  auto load = [&] {
    return parse_config(
        "mqtt:\n  server: mqtt://localhost\n  password_file: " + (dir / "mqtt.secret").string() +
            "\n" + top + "accounts:\n  kitchen:\n    client_id: app\n    client_secret_file: " +
            (dir / "client.secret").string() + "\n",
        dir / "config.yaml");
  };
  const Config first = load();
  const Config same = load();  // the same bytes, another Secret
  CHECK(plan_reload(first, same).unchanged == Names{"kitchen"});
  CHECK_FALSE(plan_reload(first, same).full_restart());
  write("client.secret", "s2\n");
  const Config new_client_secret = load();
  CHECK(plan_reload(first, new_client_secret).changed == Names{"kitchen"});
  CHECK_FALSE(plan_reload(first, new_client_secret).full_restart());
  write("mqtt.secret", "two\n");
  CHECK(plan_reload(first, load()).restart_reasons == Names{"mqtt settings"});
  fs::remove_all(dir);
}

TEST_CASE("reload plan: a certificate renewed under the same path restarts every account") {
  char pattern[] = "/tmp/g2m-compare-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const fs::path dir = pattern;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  write("broker-ca.pem", "one");
  write("identity-ca.pem", "one");
  auto load = [&] {
    return parse_config(
        "mqtt:\n  server: mqtts://localhost\n  ca: " + (dir / "broker-ca.pem").string() +
            "\nidentity:\n  ca: " + (dir / "identity-ca.pem").string() + "\naccounts:\n" + kKitchen,
        dir / "config.yaml");
  };
  const Config first = load();
  CHECK_FALSE(plan_reload(first, load()).full_restart());
  write("identity-ca.pem", "two");
  CHECK(plan_reload(first, load()).restart_reasons == Names{"identity settings"});
  write("identity-ca.pem", "one");
  write("broker-ca.pem", "two");
  CHECK(plan_reload(first, load()).restart_reasons == Names{"mqtt settings"});
  fs::remove_all(dir);
}
