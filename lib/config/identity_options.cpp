#include "config/config.h"

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

}  // namespace g2m
