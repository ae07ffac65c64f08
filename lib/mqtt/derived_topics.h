#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "config/config.h"
#include "mqtt/mqtt_session.h"

namespace g2m {

// The topics derived from an account's own retained topics (docs/mqtt-api.md "Topics the agent
// publishes"): `auth/qr`, the PNG of the address a sign-in asks the user to open, and with
// `mqtt.plain_topics` the plain-text sub-topics for displays that cannot parse JSON
// (`auth/state/state`, `auth/code/user_code`, `auth/code/expires_at`, `auth/code/expires_at_epoch`,
// `graph/R/NAME`). Each is set when its parent is and cleared when its parent is, through
// MqttSession::set_retained, so it is re-published after every reconnection like its parent.
class DerivedTopics {
 public:
  DerivedTopics(const Config& config, MqttSession& session);

  // `code_json` is the auth/code payload, empty when the topic is cleared; `expires_at` is the
  // code's expiry (the same MQTT 5 message expiry goes on the derived topics).
  void on_auth_code(const std::string& account, const std::string& code_json,
                    std::optional<SystemTime> expires_at);
  void on_auth_state(const std::string& account, const std::string& state_json);
  // `body` is the graph/R payload, empty when the topic is cleared.
  void on_graph(const std::string& account, const std::string& resource, const std::string& body);

  // Routes a retained topic that was just set to the function above that derives from it, if
  // any: the agent installs this as the session's retained-topic observer, so the code that
  // publishes auth/code, auth/state and graph/R needs no call of its own.
  void on_retained(const std::string& topic, const std::string& payload,
                   std::optional<SystemTime> expires_at);

 private:
  struct Parent {
    enum class Kind { code, state, graph } kind;
    std::string account;
    const ResourceConfig* resource = nullptr;
  };
  void set(const std::string& topic, std::string payload,
           std::optional<SystemTime> expires_at = std::nullopt);

  const Config& config_;
  MqttSession& session_;
  std::string base_;
  std::unordered_map<std::string, Parent> parents_;
  struct Shown {
    std::string text;
    std::optional<SystemTime> expires_at;
  };
  std::unordered_map<std::string, Shown> qr_;  // account -> its current QR code
};

// The address a QR code should hold for an auth/code object: `sign_in_url` (a browser sign-in),
// else `verification_uri_complete`, else `verification_uri`; nullopt when it names none.
std::optional<std::string> qr_address(const std::string& code_json);

}  // namespace g2m
