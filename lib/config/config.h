#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/logger.h"
#include "common/secret.h"
#include "identity/identity_options.h"
#include "identity/sign_in_method.h"

namespace g2m {

// The typed, validated, immutable configuration (config/config.yaml). Built only by load_config().

enum class SignIn { command, auto_ };
// sign_in_method: auto (the default) starts with the device code and falls back to the browser
// sign-in when the tenant's policy refuses the device code (docs/mqtt-api.md "Browser sign-in and
// tenant policy").
enum class SignInMethodSetting { device_code, browser, auto_ };

struct MqttConfig {
  std::string server;  // as written, e.g. mqtt://localhost:1883
  std::string scheme;  // mqtt, tcp, mqtts, ssl, ws, wss
  std::string host;
  int port = 1883;   // the scheme's default when the URL names none
  bool tls = false;  // mqtts, ssl, wss
  std::string base_topic = "graph2mqtt";
  std::string client_id;  // default graph2mqtt-<hostname>
  std::optional<std::string> username;
  SharedSecret password;  // from password: or password_file: (trailing newline dropped)
  std::optional<std::filesystem::path> ca, cert, key;
  int version = 5;  // 5 or 4 (MQTT 3.1.1)
  std::chrono::seconds keepalive{60};
  bool plain_topics = false;  // plain-text sub-topics for small displays (docs/mqtt-api.md "Topics
                              // the agent publishes")
  // mqtt.max_message_size: no payload larger than this is published (nor a packet larger than
  // the broker's Maximum Packet Size; MqttSession checks both).
  std::size_t max_message_size = 1024 * 1024;
  // SHA-256 of the contents of ca, cert and key as read: a reload notices a certificate renewed
  // under the same path (config/config_compare.h).
  std::string files_digest;
};

// What the identity code reads (provider, authority, graph, protocol and the oidc endpoints: the
// PlatformOptions it is given), and how the agent reaches it.
struct IdentityConfig : PlatformOptions {
  std::optional<std::filesystem::path> ca;
  std::chrono::seconds timeout{30};
  std::optional<std::string> proxy;
  // At most this many accounts wait for a user at once (an abuse limit: each waiting sign-in is a
  // live code someone could phish with, and the platform throttles floods of device codes).
  int max_pending_sign_ins = 1000;
  // provider: oidc
  std::optional<std::string> api;
  std::string files_digest;  // SHA-256 of ca's contents, as for MqttConfig
};

struct ResourceConfig {
  std::string name;
  std::string path;  // template, placeholders validated
  std::chrono::seconds every{60};
  int max_pages = 1;
  // `fields`: NAME -> JSON pointer into the body, each published as graph/R/NAME (plain_topics).
  std::vector<std::pair<std::string, std::string>> fields;  // in file order
  std::optional<std::string>
      ha_state;  // Home Assistant state template (docs/mqtt-api.md "Home Assistant")
};

struct AccountConfig {
  std::string name;
  std::string tenant = "common";
  std::string client_id;
  std::vector<std::string> scopes;  // as configured (openid profile offline_access NOT added here)
  std::optional<std::string> resource;  // v1; resolved default: origin of identity.graph
  SignIn sign_in = SignIn::command;
  SignInMethodSetting sign_in_method = SignInMethodSetting::auto_;
  // Where the browser sign-in ends (the native-client page under microsoft); nullopt under oidc
  // without one, where the browser sign-in is then unavailable.
  std::optional<std::string> redirect_uri;
  bool renew_code = false;
  std::vector<std::string> graph_allow;
  std::vector<ResourceConfig> resources;  // in file order
  SharedSecret client_secret;             // oidc: from client_secret_file
};

struct Config {
  std::filesystem::path file;  // as given on the command line
  MqttConfig mqtt;
  IdentityConfig identity;
  std::filesystem::path storage_dir =
      "/var/lib/graph2mqtt";  // made absolute against the file's folder
  LogLevel log_level = LogLevel::info;
  bool homeassistant_enabled = false;
  std::string homeassistant_prefix = "homeassistant";
  std::vector<AccountConfig> accounts;  // in file order, at least one
  std::vector<std::string> warnings;    // "file:line: key: what" lines, for stderr

  const AccountConfig* find_account(const std::string& name) const;
};

// All errors of one file, each "file:line: key.path: what is wrong", sorted by line.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

// Reads, parses and validates. Throws ConfigError. Never touches the network.
Config load_config(const std::filesystem::path& file);

// Same, from text (for tests and fuzzing); `file` is only used in messages and for relative paths.
Config parse_config(const std::string& text, const std::filesystem::path& file);

// A bare number of bytes, "<n>KiB" or "<n>MiB" (integer n). nullopt when malformed, negative or
// beyond std::size_t.
std::optional<std::size_t> parse_size(const std::string& text);

// What the identity code reads of the configuration (lib/identity takes these values, never a
// Config): the platform, and one account on it.
PlatformOptions platform_options(const Config& config);
IdentityOptions identity_options(const Config& config, const AccountConfig& account);

}  // namespace g2m
