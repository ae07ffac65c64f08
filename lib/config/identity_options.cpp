#include "config/config.h"
#include "identity/endpoints.h"

namespace g2m {

PlatformOptions platform_options(const Config& config) {
  const auto& id = config.identity;
  PlatformOptions p;
  p.provider = id.provider;
  p.authority = id.authority;
  p.graph = id.graph;
  p.protocol = id.protocol;
  p.issuer = id.issuer;
  p.device_authorization_endpoint = id.device_authorization_endpoint;
  p.token_endpoint = id.token_endpoint;
  return p;
}

IdentityOptions identity_options(const Config& config, const AccountConfig& account) {
  IdentityOptions o;
  o.platform = platform_options(config);
  o.name = account.name;
  o.tenant = account.tenant;
  o.client_id = account.client_id;
  o.scopes = account.scopes;
  o.resource = account.resource;
  o.redirect_uri = account.redirect_uri;
  o.client_secret = account.client_secret;
  return o;
}

// Until lib/app/bridge.cpp passes platform_options(config) itself: then this goes, with the
// declaration in identity/endpoints.h.
EndpointResolver::EndpointResolver(const Config& config, Http& http, Logger& log)
    : EndpointResolver(platform_options(config), http, log) {}

}  // namespace g2m
