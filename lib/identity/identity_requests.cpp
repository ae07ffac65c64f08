#include "identity/identity_requests.h"

namespace g2m {

namespace {
constexpr const char* kDeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

using Form = std::vector<std::pair<std::string, std::string>>;

HttpRequest post(const std::string& url, const IdentityOptions& account, Form form) {
  // Google and other confidential device clients need the secret; public clients send none
  // (Microsoft refuses one from a public client with AADSTS700025).
  if (account.client_secret) form.emplace_back("client_secret", account.client_secret->reveal());
  HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.body = form_encode(form);
  return r;
}
}  // namespace

HttpRequest device_code_request(const IdentityOptions& account, const Endpoints& endpoints) {
  if (account.platform.v1()) {
    return post(endpoints.device_authorization, account,
                {{"client_id", account.client_id}, {"resource", account.resource.value_or("")}});
  }
  return post(
      endpoints.device_authorization, account,
      {{"client_id", account.client_id}, {"scope", join_scopes(requested_scopes(account.scopes))}});
}

HttpRequest device_token_request(const IdentityOptions& account, const Endpoints& endpoints,
                                 const Secret& device_code) {
  // v1 names the device code `code` (the original ADAL endpoints).
  return post(endpoints.token, account,
              {{"grant_type", kDeviceCodeGrant},
               {"client_id", account.client_id},
               {account.platform.v1() ? "code" : "device_code", device_code.reveal()}});
}

HttpRequest authorization_code_request(const IdentityOptions& account, const Endpoints& endpoints,
                                       const Secret& code, const std::string& redirect_uri,
                                       const Secret& verifier) {
  return post(endpoints.token, account,
              {{"grant_type", "authorization_code"},
               {"client_id", account.client_id},
               {"code", code.reveal()},
               {"redirect_uri", redirect_uri},
               {"code_verifier", verifier.reveal()},
               {"scope", join_scopes(requested_scopes(account.scopes))}});
}

HttpRequest refresh_request(const IdentityOptions& account, const Endpoints& endpoints,
                            const Secret& refresh_token) {
  Form form = {{"grant_type", "refresh_token"},
               {"client_id", account.client_id},
               {"refresh_token", refresh_token.reveal()}};
  if (account.platform.v1())
    form.emplace_back("resource", account.resource.value_or(""));
  else
    form.emplace_back("scope", join_scopes(requested_scopes(account.scopes)));
  return post(endpoints.token, account, std::move(form));
}

TokenBinding token_binding(const IdentityOptions& account) {
  const auto& id = account.platform;
  if (id.provider == Provider::oidc) {
    return TokenBinding{account.client_id, "", id.issuer.value_or(id.token_endpoint.value_or("")),
                        "oidc"};
  }
  return TokenBinding{account.client_id, account.tenant, id.authority, id.v1() ? "v1" : "v2"};
}

TokenSet make_token_set(TokenResponse response, SystemTime now, const TokenSet* previous) {
  TokenSet t;
  t.obtained_at = now;
  t.expires_at = now + response.expires_in;
  t.access_token = std::move(response.access_token);
  // Microsoft rotates refresh tokens; a provider that does not keeps the old one valid.
  t.refresh_token = (response.refresh_token.empty() && previous)
                        ? previous->refresh_token.copy()
                        : std::move(response.refresh_token);
  t.scopes = (response.scopes.empty() && previous) ? previous->scopes : std::move(response.scopes);
  if (previous) t.user = previous->user;
  if (!response.id_token.empty()) {
    if (auto user = user_from_id_token(response.id_token.reveal())) t.user = user;
  }
  return t;
}

}  // namespace g2m
