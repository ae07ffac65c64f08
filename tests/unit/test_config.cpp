#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/duration.h"
#include "config/config.h"
#include "temp_dir.h"

// Failed CHECK_EQs on error lists print the lists, one error per line.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& lines) {
    std::string out = "{";
    for (const auto& l : lines) out += "\n  \"" + l + "\"";
    out += "\n}";
    return out.c_str();
  }
};

using g2m::Config;
using g2m::ConfigError;
using g2m::parse_config;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using g2m::test::TempDir;

namespace {

// Not the example's all-zero placeholder, which --check-config refuses.
const char* const kGuid = "00000000-0000-0000-0000-000000000001";

// The errors a text produces, or an empty vector when it is valid.
std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    parse_config(yaml, "config.yaml");
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

std::vector<std::string> warnings_of(const std::string& yaml) {
  return parse_config(yaml, "config.yaml").warnings;
}

fs::path source_dir() {
#ifdef G2M_SOURCE_DIR
  return G2M_SOURCE_DIR;
#else
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
#endif
}

std::string account_block() {
  return std::string("accounts:\n  kitchen:\n    client_id: ") + kGuid + "\n";
}

// Lines 1-5: mqtt, server, accounts, kitchen, client_id.
std::string minimal() {
  return "mqtt:\n  server: mqtt://localhost\n" + account_block();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Good files

TEST_CASE("config: the minimal file gets every default") {
  const Config cfg = parse_config(minimal(), "/etc/graph2mqtt/config.yaml");
  CHECK(cfg.warnings.empty());
  CHECK_EQ(cfg.file, fs::path("/etc/graph2mqtt/config.yaml"));

  CHECK_EQ(cfg.mqtt.server, "mqtt://localhost");
  CHECK_EQ(cfg.mqtt.scheme, "mqtt");
  CHECK_EQ(cfg.mqtt.host, "localhost");
  CHECK_EQ(cfg.mqtt.port, 1883);
  CHECK_FALSE(cfg.mqtt.tls);
  CHECK_EQ(cfg.mqtt.base_topic, "graph2mqtt");
  CHECK(cfg.mqtt.client_id.rfind("graph2mqtt", 0) == 0);
  CHECK_FALSE(cfg.mqtt.username);
  CHECK_FALSE(cfg.mqtt.password);
  CHECK_FALSE(cfg.mqtt.ca);
  CHECK_EQ(cfg.mqtt.version, 5);
  CHECK_EQ(cfg.mqtt.keepalive, 60s);

  CHECK_EQ(cfg.identity.provider, g2m::Provider::microsoft);
  CHECK_EQ(cfg.identity.authority, "https://login.microsoftonline.com");
  CHECK_EQ(cfg.identity.graph, "https://graph.microsoft.com/v1.0");
  CHECK_EQ(cfg.identity.protocol, g2m::Protocol::v2);
  CHECK_EQ(cfg.identity.timeout, 30s);
  CHECK_FALSE(cfg.identity.proxy);
  CHECK_FALSE(cfg.identity.issuer);

  CHECK_EQ(cfg.storage_dir, fs::path("/var/lib/graph2mqtt"));
  CHECK_EQ(cfg.log_level, g2m::LogLevel::info);
  CHECK_FALSE(cfg.homeassistant_enabled);
  CHECK_EQ(cfg.homeassistant_prefix, "homeassistant");

  REQUIRE_EQ(cfg.accounts.size(), 1u);
  const auto& a = cfg.accounts[0];
  CHECK_EQ(a.name, "kitchen");
  CHECK_EQ(a.tenant, "common");
  CHECK_EQ(a.client_id, kGuid);
  CHECK_EQ(a.scopes, std::vector<std::string>{"User.Read"});
  CHECK_EQ(a.resource, std::optional<std::string>("https://graph.microsoft.com"));
  CHECK_EQ(a.sign_in, g2m::SignIn::command);
  CHECK_FALSE(a.renew_code);
  CHECK(a.graph_allow.empty());
  CHECK(a.resources.empty());
  CHECK_FALSE(a.client_secret);
  CHECK_EQ(cfg.find_account("kitchen"), &a);
  CHECK_EQ(cfg.find_account("hall"), nullptr);
}

TEST_CASE("config: the example config/config.yaml is valid and shows the defaults") {
  // Valid once its one placeholder, the client id, is replaced.
  const fs::path example = source_dir() / "config" / "config.yaml";
  std::ifstream in(example, std::ios::binary);
  std::ostringstream read;
  read << in.rdbuf();
  std::string text = read.str();
  const std::string placeholder = "client_id: 00000000-0000-0000-0000-000000000000";
  const auto at = text.find(placeholder);
  REQUIRE(at != std::string::npos);
  text.replace(at, placeholder.size(), std::string("client_id: ") + kGuid);
  const Config cfg = parse_config(text, example);
  CHECK(cfg.warnings.empty());
  const Config defaults = parse_config(minimal(), "/etc/graph2mqtt/config.yaml");
  CHECK_EQ(cfg.mqtt.base_topic, defaults.mqtt.base_topic);
  CHECK_EQ(cfg.mqtt.version, defaults.mqtt.version);
  CHECK_EQ(cfg.mqtt.keepalive, defaults.mqtt.keepalive);
  CHECK_EQ(cfg.identity.authority, defaults.identity.authority);
  CHECK_EQ(cfg.identity.graph, defaults.identity.graph);
  CHECK_EQ(cfg.identity.timeout, defaults.identity.timeout);
  CHECK_EQ(cfg.storage_dir, defaults.storage_dir);
  CHECK_EQ(cfg.log_level, defaults.log_level);
  CHECK_EQ(cfg.homeassistant_enabled, defaults.homeassistant_enabled);
  CHECK_EQ(cfg.homeassistant_prefix, defaults.homeassistant_prefix);
  REQUIRE_EQ(cfg.accounts.size(), 1u);
  const auto& a = cfg.accounts[0];
  CHECK_EQ(a.tenant, "common");
  CHECK_EQ(a.scopes, defaults.accounts[0].scopes);
  REQUIRE_EQ(a.resources.size(), 1u);
  CHECK_EQ(a.resources[0].name, "me");
  CHECK_EQ(a.resources[0].path, "/me?$select=displayName,mail");
  CHECK_EQ(a.resources[0].every, 1h);
  CHECK_EQ(a.resources[0].max_pages, 1);
}

TEST_CASE("config: every key is read into the typed config") {
  const Config cfg = parse_config(std::string(R"(mqtt:
  server: wss://broker.example.com/mqtt
  base_topic: home/g2m
  client_id: gw1
  username: agent
  password: not-a-real-one
  version: 4
  keepalive: 2m
identity:
  authority: https://login.microsoftonline.us/
  graph: https://graph.microsoft.us/v1.0/
  protocol: v1
  timeout: 45
  proxy: http://proxy:3128
  max_pending_sign_ins: 20
storage:
  dir: /srv/g2m
log:
  level: debug
homeassistant:
  enabled: true
  prefix: ha
accounts:
  kitchen:
    tenant: contoso.onmicrosoft.com
    client_id: 0A1b2C3d-0000-4000-8000-00000000abcd
    sign_in: auto
    renew_code: true
    graph_allow: [/me, /users]
    resources:
      presence: { path: /me/presence, every: 30s }
      today: { path: "/me/calendarView?startDateTime={today}&endDateTime={tomorrow}", every: 5m, max_pages: 5 }
  hall:
    client_id: )") + kGuid + "\n",
                                  "config.yaml");
  CHECK(cfg.warnings.empty());
  CHECK_EQ(cfg.mqtt.scheme, "wss");
  CHECK_EQ(cfg.mqtt.host, "broker.example.com");
  CHECK_EQ(cfg.mqtt.port, 443);
  CHECK(cfg.mqtt.tls);
  CHECK_EQ(cfg.mqtt.base_topic, "home/g2m");
  CHECK_EQ(cfg.mqtt.client_id, "gw1");
  CHECK_EQ(cfg.mqtt.username, std::optional<std::string>("agent"));
  REQUIRE(cfg.mqtt.password);
  CHECK_EQ(cfg.mqtt.password->reveal(), "not-a-real-one");
  CHECK_EQ(cfg.mqtt.version, 4);
  CHECK_EQ(cfg.mqtt.keepalive, 120s);
  CHECK_EQ(cfg.identity.authority, "https://login.microsoftonline.us");
  CHECK_EQ(cfg.identity.graph, "https://graph.microsoft.us/v1.0");
  CHECK_EQ(cfg.identity.protocol, g2m::Protocol::v1);
  CHECK_EQ(cfg.identity.timeout, 45s);
  CHECK_EQ(cfg.identity.proxy, std::optional<std::string>("http://proxy:3128"));
  CHECK_EQ(cfg.identity.max_pending_sign_ins, 20);
  CHECK_EQ(cfg.storage_dir, fs::path("/srv/g2m"));
  CHECK_EQ(cfg.log_level, g2m::LogLevel::debug);
  CHECK(cfg.homeassistant_enabled);
  CHECK_EQ(cfg.homeassistant_prefix, "ha");
  REQUIRE_EQ(cfg.accounts.size(), 2u);
  const auto& k = cfg.accounts[0];
  CHECK_EQ(k.tenant, "contoso.onmicrosoft.com");
  CHECK_EQ(k.client_id, "0A1b2C3d-0000-4000-8000-00000000abcd");
  CHECK_EQ(k.resource, std::optional<std::string>("https://graph.microsoft.us"));
  CHECK_EQ(k.sign_in, g2m::SignIn::auto_);
  CHECK(k.renew_code);
  CHECK_EQ(k.graph_allow, std::vector<std::string>{"/me", "/users"});
  REQUIRE_EQ(k.resources.size(), 2u);
  CHECK_EQ(k.resources[0].name, "presence");
  CHECK_EQ(k.resources[0].path, "/me/presence");
  CHECK_EQ(k.resources[0].every, 30s);
  CHECK_EQ(k.resources[0].max_pages, 1);
  CHECK_EQ(k.resources[1].name, "today");
  CHECK_EQ(k.resources[1].every, 5min);
  CHECK_EQ(k.resources[1].max_pages, 5);
  CHECK_EQ(cfg.accounts[1].name, "hall");
}

TEST_CASE("config: the MQTT server's port defaults by scheme and IPv6 literals are accepted") {
  struct Case {
    const char* server;
    const char* host;
    int port;
    bool tls;
  };
  const Case cases[] = {{"mqtt://h", "h", 1883, false},
                        {"tcp://h", "h", 1883, false},
                        {"mqtts://h", "h", 8883, true},
                        {"ssl://h", "h", 8883, true},
                        {"ws://h", "h", 80, false},
                        {"wss://h", "h", 443, true},
                        {"mqtt://[::1]:1884", "::1", 1884, false},
                        {"MQTTS://h:65535", "h", 65535, true}};
  for (const auto& c : cases) {
    CAPTURE(c.server);
    const Config cfg = parse_config(std::string("mqtt:\n  server: ") + c.server +
                                        "\naccounts:\n  a:\n    client_id: " + kGuid + "\n",
                                    "config.yaml");
    CHECK_EQ(cfg.mqtt.host, c.host);
    CHECK_EQ(cfg.mqtt.port, c.port);
    CHECK_EQ(cfg.mqtt.tls, c.tls);
  }
}

TEST_CASE("config: a relative storage.dir is resolved against the config file's folder") {
  const auto dir = [](const std::string& value, const fs::path& file) {
    return parse_config(minimal() + "storage:\n  dir: " + value + "\n", file).storage_dir;
  };
  CHECK_EQ(dir("state", "/etc/graph2mqtt/config.yaml"), fs::path("/etc/graph2mqtt/state"));
  CHECK_EQ(dir("../lib/g2m", "/etc/graph2mqtt/config.yaml"), fs::path("/etc/lib/g2m"));
  CHECK_EQ(dir("/var/tmp/g2m", "/etc/graph2mqtt/config.yaml"), fs::path("/var/tmp/g2m"));
  // A config file given as a relative path still yields an absolute folder.
  CHECK_EQ(dir("state", "config.yaml"), fs::current_path() / "state");
}

TEST_CASE("config: password_file is read with one trailing newline dropped") {
  const TempDir tmp;
  const auto password = [&](const std::string& content) {
    const fs::path p = tmp.write("mqtt.secret", content);
    const Config cfg = parse_config("mqtt:\n  server: mqtt://h\n  password_file: " + p.string() +
                                        "\naccounts:\n  a:\n" + "    client_id: " + kGuid + "\n",
                                    "config.yaml");
    REQUIRE(cfg.mqtt.password);
    return cfg.mqtt.password->reveal();
  };
  CHECK_EQ(password("s3cret\n"), "s3cret");
  CHECK_EQ(password("s3cret\r\n"), "s3cret");
  CHECK_EQ(password("s3cret"), "s3cret");
  CHECK_EQ(password("s3cret\n\n"), "s3cret\n");
  CHECK_EQ(password(" spaced s3cret \n"), " spaced s3cret ");
}

TEST_CASE("config: files named by the config are relative to the config file's folder") {
  const TempDir tmp;
  tmp.write("mqtt.secret", "pw\n");
  tmp.write("ca.pem", "not checked for PEM here\n");
  const Config cfg = parse_config(std::string("mqtt:\n  server: mqtts://h\n") +
                                      "  password_file: mqtt.secret\n  ca: ca.pem\n" +
                                      "accounts:\n  a:\n    client_id: " + kGuid + "\n",
                                  tmp.path() / "config.yaml");
  REQUIRE(cfg.mqtt.password);
  CHECK_EQ(cfg.mqtt.password->reveal(), "pw");
  CHECK_EQ(cfg.mqtt.ca, std::optional<fs::path>(tmp.path() / "ca.pem"));
}

TEST_CASE("config: provider oidc takes an issuer, api and a client secret file") {
  const TempDir tmp;
  const fs::path secret = tmp.write("kitchen.secret", "very-secret\n");
  const Config cfg = parse_config(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  issuer: https://example.eu.auth0.com/
  api: https://api.example.com/
accounts:
  kitchen:
    client_id: any-string-will-do
    redirect_uri: http://localhost:8400/callback
    client_secret_file: )" + secret.string() +
                                      R"(
    graph_allow: [/me]
    resources:
      me: { path: /userinfo }
)",
                                  "config.yaml");
  CHECK(cfg.warnings.empty());
  CHECK_EQ(cfg.identity.provider, g2m::Provider::oidc);
  CHECK_EQ(cfg.identity.issuer, std::optional<std::string>("https://example.eu.auth0.com"));
  CHECK_EQ(cfg.identity.api, std::optional<std::string>("https://api.example.com"));
  const auto& a = cfg.accounts[0];
  CHECK_EQ(a.client_id, "any-string-will-do");
  CHECK(a.scopes.empty());
  CHECK_FALSE(a.resource);
  REQUIRE(a.client_secret);
  CHECK_EQ(a.client_secret->reveal(), "very-secret");
}

TEST_CASE("config: oidc needs no issuer when both endpoints are given") {
  const Config cfg = parse_config(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  device_authorization_endpoint: https://idp.example.com/device/
  token_endpoint: https://idp.example.com/token
accounts:
  a:
    client_id: x
)",
                                  "config.yaml");
  CHECK_FALSE(cfg.identity.issuer);
  // Endpoints are complete URLs: kept exactly as written.
  CHECK_EQ(cfg.identity.device_authorization_endpoint,
           std::optional<std::string>("https://idp.example.com/device/"));
}

// ---------------------------------------------------------------------------------------------
// Warnings

TEST_CASE("config: http:// on a loopback host is accepted with a warning") {
  CHECK_EQ(warnings_of(minimal() + "identity:\n  authority: http://127.0.0.1:8443\n" +
                       "  graph: http://localhost:8443/v1.0\n"),
           std::vector<std::string>{
               "config.yaml:7: identity.authority: plain http:// without TLS, accepted only "
               "because the host is loopback",
               "config.yaml:8: identity.graph: plain http:// without TLS, accepted only because "
               "the host is loopback"});
  const Config v6 = parse_config(minimal() + "identity:\n  graph: http://[::1]:99/v1.0\n", "c");
  CHECK_EQ(v6.identity.graph, "http://[::1]:99/v1.0");
  CHECK_EQ(v6.accounts[0].resource, std::optional<std::string>("http://[::1]:99"));
}

TEST_CASE("config: TLS files with a plain MQTT scheme are a warning") {
  const TempDir tmp;
  const fs::path ca = tmp.write("ca.pem", "x");
  CHECK_EQ(warnings_of("mqtt:\n  server: mqtt://h\n  ca: " + ca.string() +
                       "\naccounts:\n  a:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:3: mqtt.ca: ignored: mqtt.server does not use "
                                    "TLS (use mqtts://, ssl:// or wss://)"});
}

TEST_CASE("config: keys that do not apply to provider oidc are warnings") {
  CHECK_EQ(warnings_of(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  issuer: https://idp.example.com
  protocol: v1
accounts:
  a:
    tenant: contoso.com
    client_id: x
    resource: https://graph.microsoft.com
    sign_in_method: device_code
)"),
           std::vector<std::string>{
               "config.yaml:6: identity.protocol: does not apply to provider oidc",
               "config.yaml:9: accounts.a.tenant: does not apply to provider oidc",
               "config.yaml:11: accounts.a.resource: does not apply to provider oidc"});
}

TEST_CASE("config: resource under protocol v2 and scopes under v1 are warnings") {
  CHECK_EQ(warnings_of(minimal() + "    resource: https://graph.microsoft.com\n"),
           std::vector<std::string>{"config.yaml:6: accounts.kitchen.resource: ignored under "
                                    "protocol v2 (it applies to v1 only)"});
  CHECK_EQ(warnings_of(minimal() + "    scopes: [User.Read]\nidentity:\n  protocol: v1\n"),
           std::vector<std::string>{"config.yaml:6: accounts.kitchen.scopes: ignored under "
                                    "protocol v1 (it uses resource)"});
}

// ---------------------------------------------------------------------------------------------
// Bad files: each message exactly, with its line

TEST_CASE("config: an unknown top-level key is an error") {
  CHECK_EQ(errors_of(minimal() + "loglevel: debug\n"),
           std::vector<std::string>{"config.yaml:6: loglevel: unknown key"});
}

TEST_CASE("config: an unknown key names the nearest known key") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\n  base_topik: x\n" + account_block()),
           std::vector<std::string>{
               "config.yaml:3: mqtt.base_topik: unknown key (did you mean `base_topic`?)"});
}

TEST_CASE("config: an unknown key deep in a resource is an error") {
  CHECK_EQ(errors_of(minimal() + "    resources:\n      me:\n        path: /me\n" +
                     "        evry: 5m\n"),
           std::vector<std::string>{"config.yaml:9: accounts.kitchen.resources.me.evry: unknown "
                                    "key (did you mean `every`?)"});
}

TEST_CASE("config: a string where a map is expected is an error") {
  CHECK_EQ(errors_of(std::string("mqtt: mqtt://localhost\naccounts:\n  a:\n    client_id: ") +
                     kGuid + "\n"),
           std::vector<std::string>{"config.yaml:1: mqtt: must be a map, not a string"});
}

TEST_CASE("config: a list where a bool is expected is an error") {
  CHECK_EQ(errors_of(minimal() + "homeassistant:\n  enabled: [true]\n"),
           std::vector<std::string>{
               "config.yaml:7: homeassistant.enabled: must be true or false, not a list"});
  CHECK_EQ(errors_of(minimal() + "homeassistant:\n  enabled: yes\n"),
           std::vector<std::string>{"config.yaml:7: homeassistant.enabled: must be true or false"});
}

TEST_CASE("config: scopes written as one string is an error") {
  CHECK_EQ(errors_of(minimal() + "    scopes: User.Read Mail.Read\n"),
           std::vector<std::string>{"config.yaml:6: accounts.kitchen.scopes: must be a list, not "
                                    "a string"});
}

TEST_CASE("config: a missing client_id is reported at the account's line") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts:\n  kitchen:\n    tenant: common\n"),
           std::vector<std::string>{"config.yaml:4: accounts.kitchen.client_id: required"});
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts:\n  kitchen:\n"),
           std::vector<std::string>{"config.yaml:4: accounts.kitchen.client_id: required"});
}

TEST_CASE("config: a client_id that is not a GUID is an error under microsoft") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts:\n  kitchen:\n"
                     "    client_id: 00000000-0000-0000-0000-00000000000g\n"),
           std::vector<std::string>{
               "config.yaml:5: accounts.kitchen.client_id: must be a GUID like "
               "00000000-0000-0000-0000-000000000000 (the app registration's application ID)"});
}

TEST_CASE("config: an account name outside [A-Za-z0-9_-]{1,64} is an error") {
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: mqtt://h\naccounts:\n  my kitchen:\n") +
                     "    client_id: " + kGuid + "\n  " + std::string(65, 'a') +
                     ":\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{
               "config.yaml:4: accounts.my kitchen: an account name must be 1 to 64 letters, "
               "digits, `_` or `-`",
               "config.yaml:6: accounts." + std::string(65, 'a') +
                   ": an account name must be 1 to 64 letters, digits, `_` or `-`"});
}

TEST_CASE("config: an account named bridge is an error") {
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: mqtt://h\naccounts:\n  bridge:\n") +
                     "    client_id: " + kGuid + "\n"),
           std::vector<std::string>{
               "config.yaml:4: accounts.bridge: `bridge` is reserved for the agent's own topics"});
}

TEST_CASE("config: a file without accounts is an error") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts: {}\n"),
           std::vector<std::string>{"config.yaml:3: accounts: at least one account is required"});
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts:\n"),
           std::vector<std::string>{"config.yaml:3: accounts: at least one account is required"});
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\n"),
           std::vector<std::string>{"config.yaml:1: accounts: required (at least one account)"});
}

TEST_CASE("config: an empty file reports what is required") {
  CHECK_EQ(errors_of(""),
           std::vector<std::string>{"config.yaml:1: mqtt: required",
                                    "config.yaml:1: accounts: required (at least one account)"});
  CHECK_EQ(errors_of("- mqtt\n"),
           std::vector<std::string>{"config.yaml:1: (top level): must be a map, not a list"});
}

TEST_CASE("config: password and password_file together are an error") {
  const TempDir tmp;
  const fs::path p = tmp.write("mqtt.secret", "pw\n");
  const auto errors = errors_of("mqtt:\n  server: mqtt://h\n  password: hunter2\n" +
                                std::string("  password_file: ") + p.string() +
                                "\naccounts:\n  a:\n    client_id: " + kGuid + "\n");
  CHECK_EQ(errors, std::vector<std::string>{"config.yaml:4: mqtt.password_file: cannot be used "
                                            "together with mqtt.password (set one of them)"});
}

TEST_CASE("config: an unreadable password_file is an error naming the OS reason") {
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: mqtt://h\n") +
                     "  password_file: /nonexistent/g2m/mqtt.secret\naccounts:\n  a:\n" +
                     "    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:3: mqtt.password_file: cannot read "
                                    "/nonexistent/g2m/mqtt.secret: No such file or directory"});
  const TempDir tmp;
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\n  password_file: " + tmp.path().string() +
                     "\naccounts:\n  a:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:3: mqtt.password_file: cannot read " +
                                    tmp.path().string() + ": Is a directory"});
  const fs::path empty = tmp.write("empty.secret", "\n");
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\n  password_file: " + empty.string() +
                     "\naccounts:\n  a:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:3: mqtt.password_file: " + empty.string() +
                                    " is empty"});
}

TEST_CASE("config: unreadable ca, cert, key and identity.ca are errors") {
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: mqtts://h\n  ca: /nonexistent/ca.pem\n") +
                     "  cert: /nonexistent/c.pem\n  key: /nonexistent/k.pem\n" +
                     "identity:\n  ca: /nonexistent/extra.pem\n" +
                     "accounts:\n  a:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{
               "config.yaml:3: mqtt.ca: cannot read /nonexistent/ca.pem: No such file or "
               "directory",
               "config.yaml:4: mqtt.cert: cannot read /nonexistent/c.pem: No such file or "
               "directory",
               "config.yaml:5: mqtt.key: cannot read /nonexistent/k.pem: No such file or "
               "directory",
               "config.yaml:7: identity.ca: cannot read /nonexistent/extra.pem: No such file or "
               "directory"});
}

TEST_CASE("config: a client certificate without its key is an error") {
  const TempDir tmp;
  const fs::path cert = tmp.write("c.pem", "x");
  CHECK_EQ(errors_of("mqtt:\n  server: mqtts://h\n  cert: " + cert.string() +
                     "\naccounts:\n  a:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:3: mqtt.cert: needs mqtt.key as well"});
}

TEST_CASE("config: an MQTT server with another scheme is an error") {
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: http://broker:1883\naccounts:\n  a:\n") +
                     "    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:2: mqtt.server: unsupported scheme `http` (use "
                                    "mqtt, tcp, mqtts, ssl, ws or wss)"});
  CHECK_EQ(errors_of(std::string("mqtt:\n  server: localhost:1883\naccounts:\n  a:\n") +
                     "    client_id: " + kGuid + "\n"),
           std::vector<std::string>{
               "config.yaml:2: mqtt.server: must be a URL like mqtt://localhost:1883"});
}

TEST_CASE("config: an MQTT server port outside 1..65535 is an error") {
  for (const char* port : {"0", "65536", "x", ""}) {
    CAPTURE(port);
    CHECK_EQ(errors_of(std::string("mqtt:\n  server: \"mqtt://h:") + port +
                       "\"\naccounts:\n  a:\n    client_id: " + kGuid + "\n"),
             std::vector<std::string>{
                 "config.yaml:2: mqtt.server: the port must be a number from 1 to 65535"});
  }
}

TEST_CASE("config: credentials in the MQTT server URL are refused and never echoed") {
  const auto errors = errors_of(std::string("mqtt:\n  server: mqtt://agent:hunter2@h\n") +
                                "accounts:\n  a:\n    client_id: " + kGuid + "\n");
  CHECK_EQ(errors, std::vector<std::string>{
                       "config.yaml:2: mqtt.server: must not hold a user name or password (use "
                       "mqtt.username and mqtt.password_file)"});
}

TEST_CASE("config: MQTT version 3 is an error") {
  CHECK_EQ(errors_of("mqtt:\n  version: 3\n  server: mqtt://h\n" + account_block()),
           std::vector<std::string>{"config.yaml:2: mqtt.version: must be 5 or 4 (MQTT 3.1.1)"});
}

TEST_CASE("config: a keepalive of 0 is an error") {
  CHECK_EQ(
      errors_of("mqtt:\n  keepalive: 0s\n  server: mqtt://h\n" + account_block()),
      std::vector<std::string>{"config.yaml:2: mqtt.keepalive: must be between 1s and 65535s"});
  CHECK_EQ(
      errors_of("mqtt:\n  keepalive: 65536\n  server: mqtt://h\n" + account_block()),
      std::vector<std::string>{"config.yaml:2: mqtt.keepalive: must be between 1s and 65535s"});
}

TEST_CASE("config: a base_topic with a wildcard or a leading $ is an error") {
  CHECK_EQ(errors_of("mqtt:\n  base_topic: g2m/#\n  server: mqtt://h\n" + account_block()),
           std::vector<std::string>{
               "config.yaml:2: mqtt.base_topic: must not contain the wildcards + or #"});
  CHECK_EQ(errors_of("mqtt:\n  base_topic: $g2m\n  server: mqtt://h\n" + account_block()),
           std::vector<std::string>{
               "config.yaml:2: mqtt.base_topic: must not start with $ (reserved for the broker)"});
  CHECK_EQ(
      errors_of("mqtt:\n  base_topic: g2m/\n  server: mqtt://h\n" + account_block()),
      std::vector<std::string>{"config.yaml:2: mqtt.base_topic: must not start or end with /"});
}

TEST_CASE("config: every below 5s is an error") {
  CHECK_EQ(errors_of(minimal() +
                     "    resources:\n      presence: { path: /me/presence, every: " + "4s }\n"),
           std::vector<std::string>{
               "config.yaml:7: accounts.kitchen.resources.presence.every: must be at least 5s"});
}

TEST_CASE("config: max_pages above 50 is an error") {
  CHECK_EQ(errors_of(minimal() + "    resources:\n      mail:\n        path: /me/messages\n" +
                     "        max_pages: 51\n"),
           std::vector<std::string>{
               "config.yaml:9: accounts.kitchen.resources.mail.max_pages: must be between 1 and "
               "50"});
}

TEST_CASE("config: a malformed duration is an error quoting it") {
  CHECK_EQ(errors_of(minimal() + "    resources:\n      me:\n        path: /me\n" +
                     "        every: 1.5s\n"),
           std::vector<std::string>{
               "config.yaml:9: accounts.kitchen.resources.me.every: `1.5s` is not a duration (use "
               "<n>s, <n>m, <n>h or <n>d with a whole number n, or a number of seconds)"});
}

TEST_CASE("config: an unknown placeholder in a resource path is an error naming it") {
  CHECK_EQ(errors_of(minimal() + "    resources:\n      cal:\n" +
                     "        path: /me/calendarView?startDateTime={yesterday}\n"),
           std::vector<std::string>{
               "config.yaml:8: accounts.kitchen.resources.cal.path: unknown placeholder "
               "`{yesterday}` (use {now}, {today}, {tomorrow}, {now+<duration>} or "
               "{now-<duration>})"});
}

TEST_CASE("config: a resource without a path, or a path without a leading /, is an error") {
  CHECK_EQ(errors_of(minimal() + "    resources:\n      me:\n        every: 5m\n" +
                     "      you: { path: me }\n"),
           std::vector<std::string>{
               "config.yaml:7: accounts.kitchen.resources.me.path: required",
               "config.yaml:9: accounts.kitchen.resources.you.path: must start with /"});
}

TEST_CASE("config: an http:// authority on a non-loopback host is an error") {
  CHECK_EQ(errors_of(minimal() + "identity:\n  authority: http://login.microsoftonline.com\n"),
           std::vector<std::string>{"config.yaml:7: identity.authority: must be an https:// URL "
                                    "(http:// is accepted only on a loopback host)"});
  CHECK_EQ(errors_of(minimal() + "identity:\n  graph: http://128.0.0.1/v1.0\n"),
           std::vector<std::string>{"config.yaml:7: identity.graph: must be an https:// URL "
                                    "(http:// is accepted only on a loopback host)"});
}

TEST_CASE("config: provider oidc without an issuer is an error at identity's line") {
  CHECK_EQ(errors_of(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  token_endpoint: https://idp.example.com/token
accounts:
  a:
    client_id: x
)"),
           std::vector<std::string>{
               "config.yaml:3: identity.issuer: required with provider oidc (unless both "
               "device_authorization_endpoint and token_endpoint are given)"});
}

TEST_CASE("config: provider oidc with resources needs identity.api") {
  CHECK_EQ(errors_of(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  issuer: https://idp.example.com
accounts:
  a:
    client_id: x
    graph_allow: [/me]
)"),
           std::vector<std::string>{"config.yaml:3: identity.api: required with provider oidc "
                                    "when an account has resources or graph_allow"});
}

TEST_CASE("config: oidc-only keys under provider microsoft are errors") {
  CHECK_EQ(errors_of(minimal() + "    client_secret_file: /etc/secret\n" +
                     "identity:\n  issuer: https://idp.example.com\n"),
           std::vector<std::string>{
               "config.yaml:6: accounts.kitchen.client_secret_file: applies only to provider "
               "oidc",
               "config.yaml:8: identity.issuer: applies only to provider oidc"});
}

TEST_CASE("config: a tenant that is not a name, id or domain is an error") {
  const auto error = [](const std::string& tenant) {
    return std::vector<std::string>{
        "config.yaml:6: accounts.kitchen.tenant: must be common, organizations, consumers, a "
        "tenant id or a domain name (a tenant id is a GUID, a domain has a dot, like "
        "contoso.onmicrosoft.com; Microsoft refuses `" +
        tenant + "` with AADSTS900023)"};
  };
  for (const char* bad :
       {"-contoso.com", "contoso com", "contoso", "1234-abcd", "contoso.", "contoso..com"}) {
    CHECK_EQ(errors_of(minimal() + "    tenant: \"" + bad + "\"\n"), error(bad));
  }
  for (const char* good : {"common", "Organizations", "consumers", "contoso.onmicrosoft.com",
                           "contoso.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"}) {
    CHECK_MESSAGE(errors_of(minimal() + "    tenant: " + good + "\n").empty(), good);
  }
}

TEST_CASE("config: a scope with a space is reported as its list item") {
  CHECK_EQ(errors_of(minimal() + "    scopes:\n      - User.Read\n      - Mail.Read Mail.Send\n"),
           std::vector<std::string>{"config.yaml:8: accounts.kitchen.scopes[1]: must not contain "
                                    "spaces (one scope per item)"});
  CHECK_EQ(
      errors_of(minimal() + "    scopes: [User.Read, \"\"]\n"),
      std::vector<std::string>{"config.yaml:6: accounts.kitchen.scopes[1]: must not be empty"});
}

TEST_CASE("config: a graph_allow item without a leading / is an error") {
  CHECK_EQ(errors_of(minimal() + "    graph_allow: [/me, users]\n"),
           std::vector<std::string>{
               "config.yaml:6: accounts.kitchen.graph_allow[1]: must start with /"});
}

TEST_CASE("config: a duplicate key is an error") {
  CHECK_EQ(errors_of(minimal() + "  kitchen:\n    client_id: " + kGuid + "\n"),
           std::vector<std::string>{"config.yaml:6: accounts.kitchen: duplicate key"});
}

TEST_CASE("config: a log level outside error/warn/info/debug is an error") {
  CHECK_EQ(
      errors_of(minimal() + "log:\n  level: verbose\n"),
      std::vector<std::string>{"config.yaml:7: log.level: must be error, warn, info or debug"});
}

TEST_CASE("config: a YAML syntax error is reported with yaml-cpp's message and line") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://h\naccounts:\n  a: b: c\n"),
           std::vector<std::string>{"config.yaml:4: illegal map value"});
  CHECK_EQ(errors_of("mqtt:\n  server: [mqtt://h\naccounts: {}\n"),
           std::vector<std::string>{"config.yaml:3: end of sequence flow not found"});
}

TEST_CASE("config: several errors are all reported, sorted by line") {
  // The validator meets identity before mqtt and accounts last; the output is in line order.
  const auto errors = errors_of(R"(mqtt:
  server: ftp://h
  version: 6
accounts:
  kitchen:
    client_id: nope
    renew_code: maybe
identity:
  timeout: 0s
  colour: blue
)");
  CHECK_EQ(errors, std::vector<std::string>{
                       "config.yaml:2: mqtt.server: unsupported scheme `ftp` (use mqtt, tcp, "
                       "mqtts, ssl, ws or wss)",
                       "config.yaml:3: mqtt.version: must be 5 or 4 (MQTT 3.1.1)",
                       "config.yaml:6: accounts.kitchen.client_id: must be a GUID like "
                       "00000000-0000-0000-0000-000000000000 (the app registration's application "
                       "ID)",
                       "config.yaml:7: accounts.kitchen.renew_code: must be true or false",
                       "config.yaml:9: identity.timeout: must be between 1s and 1d",
                       "config.yaml:10: identity.colour: unknown key"});
}

TEST_CASE("config: identity.max_pending_sign_ins is 1000 unless set to 1..100000") {
  const auto accounts = std::string(
                            "mqtt:\n  server: mqtt://h\naccounts:\n  kitchen:\n    "
                            "client_id: ") +
                        kGuid + "\n";
  CHECK_EQ(parse_config(accounts, "config.yaml").identity.max_pending_sign_ins, 1000);
  const auto error_for = [&](const std::string& value) {
    return errors_of("identity:\n  max_pending_sign_ins: " + value + "\n" + accounts);
  };
  for (const char* bad : {"0", "100001", "-3"}) {
    CAPTURE(bad);
    CHECK_EQ(error_for(bad), std::vector<std::string>{"config.yaml:2: "
                                                      "identity.max_pending_sign_ins: must be "
                                                      "between 1 and 100000"});
  }
  for (const char* bad : {"lots", "2.5"}) {
    CAPTURE(bad);
    CHECK_EQ(error_for(bad), std::vector<std::string>{
                                 "config.yaml:2: identity.max_pending_sign_ins: must be a whole "
                                 "number"});
  }
}

TEST_CASE("config: an unreadable config file is one error with the OS reason") {
  try {
    g2m::load_config("/nonexistent/g2m/config.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_EQ(e.errors(),
             std::vector<std::string>{"/nonexistent/g2m/config.yaml: cannot read the config "
                                      "file: No such file or directory"});
    CHECK_EQ(std::string(e.what()), e.errors()[0]);
  }
}

TEST_CASE("config: ConfigError::what() joins every error with newlines") {
  try {
    parse_config("", "c.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_EQ(std::string(e.what()),
             "c.yaml:1: mqtt: required\nc.yaml:1: accounts: required (at least one account)");
  }
}

TEST_CASE("config: no error or warning ever holds a secret value") {
  const std::string secret = "hunter2-XYZZY";
  const std::string texts[] = {
      "mqtt:\n  server: mqtt://u:" + secret + "@h:99999\n",
      "mqtt:\n  server: mqtt://h\n  password: [" + secret + "]\n",
      "mqtt:\n  server: mqtt://h\n  password: " + secret + "\n  password_file: /x\n",
      "mqtt: " + secret + "\n",
      "mqtt:\n  server: mqtt://h\nidentity:\n  proxy: ftp://u:" + secret + "@proxy\n",
      "mqtt:\n  server: mqtt://h\nidentity:\n  proxy: http://u:" + secret + "@proxy:0\n",
  };
  for (const auto& text : texts) {
    for (const auto& e : errors_of(text)) CHECK(e.find(secret) == std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Durations

TEST_CASE("config: durations are whole numbers with a lower-case unit or bare seconds") {
  using g2m::parse_duration;
  CHECK_EQ(parse_duration("30s"), std::optional(30s));
  CHECK_EQ(parse_duration("5m"), std::optional<std::chrono::seconds>(300s));
  CHECK_EQ(parse_duration("1h"), std::optional<std::chrono::seconds>(3600s));
  CHECK_EQ(parse_duration("2d"), std::optional<std::chrono::seconds>(172800s));
  CHECK_EQ(parse_duration("45"), std::optional(45s));
  CHECK_EQ(parse_duration("0"), std::optional(0s));
  CHECK_EQ(parse_duration("007s"), std::optional(7s));
}

TEST_CASE("config: malformed, negative and overflowing durations are rejected") {
  using g2m::parse_duration;
  for (const char* bad :
       {"", "s", "1.5s", "5M", "5S", "-3s", "-3", "+3s", "3 s", " 3s", "3s ", "3ms", "3w", "1e3",
        "0x10", "9223372036854775808", "9223372036854775807m", "106751991167301d"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad));
  }
  CHECK_EQ(parse_duration("9223372036854775807"),
           std::optional(std::chrono::seconds(9223372036854775807LL)));
}

// ---------------------------------------------------------------------------------------------
// What a new gateway's first config gets wrong (issue 16)

TEST_CASE("config: the example's placeholder client id is an error") {
  CHECK_EQ(errors_of("mqtt:\n  server: mqtt://localhost\naccounts:\n  kitchen:\n"
                     "    client_id: 00000000-0000-0000-0000-000000000000\n"),
           std::vector<std::string>{
               "config.yaml:5: accounts.kitchen.client_id: is the example's placeholder: "
               "replace with your app's client id (the Application (client) ID of your app "
               "registration in Microsoft Entra)"});
}

TEST_CASE("config: `~` in a path is an error (nothing expands it)") {
  const std::string tilde =
      "`~` is not expanded here (no shell reads this file): write the whole path, e.g. "
      "/home/pi/... or /etc/graph2mqtt/...";
  CHECK_EQ(errors_of(minimal() + "storage:\n  dir: ~/tokens\n"),
           std::vector<std::string>{"config.yaml:7: storage.dir: " + tilde});
  CHECK_EQ(errors_of("mqtt:\n  server: mqtts://localhost\n  password_file: ~/mqtt.secret\n"
                     "  ca: ~/ca.pem\n  cert: ~pi/c.pem\n  key: ~/c.key\n" +
                     account_block()),
           std::vector<std::string>{
               "config.yaml:3: mqtt.password_file: " + tilde, "config.yaml:4: mqtt.ca: " + tilde,
               "config.yaml:5: mqtt.cert: " + tilde, "config.yaml:6: mqtt.key: " + tilde});
  CHECK_EQ(errors_of(minimal() + "identity:\n  ca: ~/ca.pem\n"),
           std::vector<std::string>{"config.yaml:7: identity.ca: " + tilde});
}

TEST_CASE("config: a resource path that starts with the API version is an error") {
  CHECK_EQ(errors_of(minimal() + "    scopes: [User.Read, Presence.Read]\n    resources:\n" +
                     "      me: { path: /v1.0/me, every: 1h }\n" +
                     "      presence:\n        path: /beta/me/presence\n"),
           std::vector<std::string>{
               "config.yaml:8: accounts.kitchen.resources.me.path: must not start with the API "
               "version: identity.graph already ends with it (write /me)",
               "config.yaml:10: accounts.kitchen.resources.presence.path: must not start with "
               "the API version: identity.graph already ends with it (write /me/presence)"});
  CHECK(errors_of(minimal() + "    resources:\n      me: { path: /me/v1.0x }\n").empty());
}

TEST_CASE("config: a resource whose Graph permission is not among the scopes is a warning") {
  CHECK_EQ(warnings_of(minimal() + "    scopes: [User.Read]\n    resources:\n" +
                       "      presence: { path: /me/presence, every: 30s }\n" +
                       "      today:\n        path: \"/me/calendarView?startDateTime={today}"
                       "&endDateTime={tomorrow}\"\n" +
                       "      events: { path: /me/events }\n      me: { path: /me }\n"),
           std::vector<std::string>{
               "config.yaml:8: accounts.kitchen.resources.presence.path: /me/presence needs the "
               "Graph permission Presence.Read, which accounts.kitchen.scopes does not list: "
               "Graph refuses it (403) until it is added",
               "config.yaml:10: accounts.kitchen.resources.today.path: "
               "/me/calendarView?startDateTime={today}&endDateTime={tomorrow} needs the Graph "
               "permission Calendars.Read, which accounts.kitchen.scopes does not list: Graph "
               "refuses it (403) until it is added",
               "config.yaml:11: accounts.kitchen.resources.events.path: /me/events needs the "
               "Graph permission Calendars.Read, which accounts.kitchen.scopes does not list: "
               "Graph refuses it (403) until it is added"});
  // Granted (also by a wider permission, or a full scope URI, in any case): no warning.
  CHECK(warnings_of(minimal() +
                    "    scopes: [https://graph.microsoft.com/presence.read, "
                    "Calendars.ReadWrite]\n    resources:\n" +
                    "      presence: { path: /me/presence }\n      cal: { path: /me/calendar }\n")
            .empty());
  // No scopes given: the default, User.Read, does not cover presence.
  CHECK_EQ(warnings_of(minimal() + "    resources:\n      p: { path: /me/presence }\n").size(), 1u);
}

TEST_CASE("config: a map where a string is expected says a section looks misplaced") {
  // `resource:` (the v1 resource, a string) written for `resources:` (the Graph resources).
  CHECK_EQ(errors_of(minimal() + "    resource:\n      me: { path: /me }\n"),
           std::vector<std::string>{
               "config.yaml:6: accounts.kitchen.resource: must be a string, not a map: this "
               "looks like a section in the wrong place (an account's Graph resources go under "
               "`resources:`)"});
  CHECK_EQ(errors_of("mqtt:\n  server:\n    host: localhost\n" + account_block()),
           std::vector<std::string>{
               "config.yaml:2: mqtt.server: must be a string, not a map: this looks like a "
               "section in the wrong place (check the key's spelling and its indentation)"});
}
