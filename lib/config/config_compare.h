#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace g2m {

// What a reload (SIGHUP) can apply without restarting every account (docs/operating.md
// "Changing the configuration: reload"). An account's settings are its entry under `accounts:`;
// the global settings every account depends on (mqtt.*, identity.*, storage.dir, homeassistant.*)
// cannot change under a running account, so a change there restarts them all. log.level is
// applied as it is.
struct ReloadPlan {
  // Why every account has to restart ("mqtt settings changed", ...); empty when the new
  // configuration can be applied account by account.
  std::vector<std::string> restart_reasons;
  bool log_level_changed = false;
  // Account names: `removed` in the running file's order, the others in the new file's.
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> changed;
  std::vector<std::string> unchanged;

  bool full_restart() const { return !restart_reasons.empty(); }
};

ReloadPlan plan_reload(const Config& running, const Config& fresh);

// Field by field, secrets by their bytes. A new setting must be compared here too.
bool same_settings(const MqttConfig& a, const MqttConfig& b);
bool same_settings(const IdentityConfig& a, const IdentityConfig& b);
bool same_settings(const AccountConfig& a, const AccountConfig& b);

}  // namespace g2m
