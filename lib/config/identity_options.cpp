#include "config/config.h"
#include "identity/endpoints.h"

namespace g2m {

PlatformOptions platform_options(const Config& config) {
  return config.identity;  // the PlatformOptions part of it
}

IdentityOptions identity_options(const Config& config, const AccountConfig& account) {
  return IdentityOptions{.platform = platform_options(config),
                         .name = account.name,
                         .tenant = account.tenant,
                         .client_id = account.client_id,
                         .scopes = account.scopes,
                         .resource = account.resource,
                         .redirect_uri = account.redirect_uri,
                         .client_secret = account.client_secret};
}

// Until lib/app/bridge.cpp passes platform_options(config) itself: then this goes, with the
// declaration in identity/endpoints.h.
EndpointResolver::EndpointResolver(const Config& config, Http& http, Logger& log)
    : EndpointResolver(platform_options(config), http, log) {}

}  // namespace g2m
