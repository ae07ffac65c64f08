#include "identity/identity_requests.h"

namespace g2m {

namespace {
constexpr const char* kDeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

bool v1(const Config& config) {
  return config.identity.protocol == Protocol::v1;
}

std::string endpoint(const Config& config, const AccountConfig& account, const char* v2_leaf,
                     const char* v1_leaf) {
  return config.identity.authority + "/" + account.tenant + "/oauth2/" +
         (v1(config) ? v1_leaf : v2_leaf);
}

HttpRequest post(std::string url, std::string body) {
  HttpRequest r;
  r.method = "POST";
  r.url = std::move(url);
  r.body = std::move(body);
  return r;
}
}  // namespace

HttpRequest device_code_request(const Config& config, const AccountConfig& account) {
  if (v1(config)) {
    return post(endpoint(config, account, "v2.0/devicecode", "devicecode"),
                form_encode({{"client_id", account.client_id},
                             {"resource", account.resource.value_or("")}}));
  }
  return post(endpoint(config, account, "v2.0/devicecode", "devicecode"),
              form_encode({{"client_id", account.client_id},
                           {"scope", join_scopes(requested_scopes(account.scopes))}}));
}

HttpRequest device_token_request(const Config& config, const AccountConfig& account,
                                 const Secret& device_code) {
  // v1 names the device code `code` (the original ADAL endpoints).
  return post(endpoint(config, account, "v2.0/token", "token"),
              form_encode({{"grant_type", kDeviceCodeGrant},
                           {"client_id", account.client_id},
                           {v1(config) ? "code" : "device_code", device_code.reveal()}}));
}

HttpRequest refresh_request(const Config& config, const AccountConfig& account,
                            const Secret& refresh_token) {
  std::vector<std::pair<std::string, std::string>> form = {
      {"grant_type", "refresh_token"},
      {"client_id", account.client_id},
      {"refresh_token", refresh_token.reveal()}};
  if (v1(config))
    form.emplace_back("resource", account.resource.value_or(""));
  else
    form.emplace_back("scope", join_scopes(requested_scopes(account.scopes)));
  return post(endpoint(config, account, "v2.0/token", "token"), form_encode(form));
}

TokenBinding token_binding(const Config& config, const AccountConfig& account) {
  return TokenBinding{account.client_id, account.tenant, config.identity.authority,
                      v1(config) ? "v1" : "v2"};
}

TokenSet make_token_set(TokenResponse response, SystemTime now, const TokenSet* previous) {
  TokenSet t;
  t.obtained_at = now;
  t.expires_at = now + response.expires_in;
  t.access_token = std::move(response.access_token);
  // Microsoft rotates refresh tokens; a provider that does not keeps the old one valid.
  t.refresh_token = (response.refresh_token.empty() && previous)
                        ? previous->refresh_token
                        : std::move(response.refresh_token);
  t.scopes = (response.scopes.empty() && previous) ? previous->scopes : std::move(response.scopes);
  if (previous) t.user = previous->user;
  if (!response.id_token.empty()) {
    if (auto user = user_from_id_token(response.id_token.reveal())) t.user = user;
  }
  return t;
}

}  // namespace g2m
