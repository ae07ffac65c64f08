#include "config/config_compare.h"

#include <tuple>

namespace g2m {

namespace {

bool same_secret(const SharedSecret& a, const SharedSecret& b) {
  if (!a || !b) return !a && !b;
  return *a == *b;
}

bool same_resource(const ResourceConfig& a, const ResourceConfig& b) {
  return std::tie(a.name, a.path, a.every, a.max_pages, a.fields, a.ha_state) ==
         std::tie(b.name, b.path, b.every, b.max_pages, b.fields, b.ha_state);
}

// A setting added to one of these structs must be compared here too: on x86-64 with libstdc++
// (where CI builds) these sizes make the build fail until someone looks (then update them).
#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(MqttConfig) == 432, "a new mqtt setting: compare it in same_settings");
static_assert(sizeof(IdentityConfig) == 376, "a new identity setting: compare it in same_settings");
static_assert(sizeof(AccountConfig) == 280, "a new account setting: compare it in same_settings");
static_assert(sizeof(ResourceConfig) == 144, "a new resource setting: compare it in same_resource");
static_assert(sizeof(Config) == 976, "a new global setting: compare it in plan_reload");
#endif

}  // namespace

bool same_settings(const MqttConfig& a, const MqttConfig& b) {
  return std::tie(a.server, a.scheme, a.host, a.port, a.tls, a.base_topic, a.client_id, a.username,
                  a.ca, a.cert, a.key, a.version, a.keepalive, a.plain_topics, a.max_message_size,
                  a.files_digest) == std::tie(b.server, b.scheme, b.host, b.port, b.tls,
                                              b.base_topic, b.client_id, b.username, b.ca, b.cert,
                                              b.key, b.version, b.keepalive, b.plain_topics,
                                              b.max_message_size, b.files_digest) &&
         same_secret(a.password, b.password);
}

bool same_settings(const IdentityConfig& a, const IdentityConfig& b) {
  return std::tie(a.provider, a.authority, a.graph, a.protocol, a.ca, a.timeout, a.proxy,
                  a.max_pending_sign_ins, a.issuer, a.device_authorization_endpoint,
                  a.token_endpoint, a.api, a.files_digest) ==
         std::tie(b.provider, b.authority, b.graph, b.protocol, b.ca, b.timeout, b.proxy,
                  b.max_pending_sign_ins, b.issuer, b.device_authorization_endpoint,
                  b.token_endpoint, b.api, b.files_digest);
}

bool same_settings(const AccountConfig& a, const AccountConfig& b) {
  if (std::tie(a.name, a.tenant, a.client_id, a.scopes, a.resource, a.sign_in, a.sign_in_method,
               a.redirect_uri, a.renew_code, a.graph_allow) !=
          std::tie(b.name, b.tenant, b.client_id, b.scopes, b.resource, b.sign_in, b.sign_in_method,
                   b.redirect_uri, b.renew_code, b.graph_allow) ||
      !same_secret(a.client_secret, b.client_secret) || a.resources.size() != b.resources.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.resources.size(); ++i) {
    if (!same_resource(a.resources[i], b.resources[i])) return false;
  }
  return true;
}

ReloadPlan plan_reload(const Config& running, const Config& fresh) {
  ReloadPlan plan;
  if (!same_settings(running.mqtt, fresh.mqtt)) plan.restart_reasons.push_back("mqtt settings");
  if (!same_settings(running.identity, fresh.identity)) {
    plan.restart_reasons.push_back("identity settings");
  }
  if (running.storage_dir != fresh.storage_dir) plan.restart_reasons.push_back("storage.dir");
  if (running.homeassistant_enabled != fresh.homeassistant_enabled ||
      running.homeassistant_prefix != fresh.homeassistant_prefix) {
    plan.restart_reasons.push_back("homeassistant settings");
  }
  plan.log_level_changed = running.log_level != fresh.log_level;
  for (const auto& account : fresh.accounts) {
    const AccountConfig* before = running.find_account(account.name);
    if (before == nullptr) {
      plan.added.push_back(account.name);
    } else if (same_settings(*before, account)) {
      plan.unchanged.push_back(account.name);
    } else {
      plan.changed.push_back(account.name);
    }
  }
  for (const auto& account : running.accounts) {
    if (fresh.find_account(account.name) == nullptr) plan.removed.push_back(account.name);
  }
  return plan;
}

}  // namespace g2m
