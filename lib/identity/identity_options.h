#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/secret.h"

namespace g2m {

enum class Provider { microsoft, oidc };
enum class Protocol { v2, v1 };

// The identity platform every account signs in with, as far as the identity code reads it
// (config.yaml `identity:`; built by platform_options() in config/config.h).
struct PlatformOptions {
  Provider provider = Provider::microsoft;
  std::string authority = "https://login.microsoftonline.com";  // no trailing slash
  std::string graph = "https://graph.microsoft.com/v1.0";       // no trailing slash (for /me)
  Protocol protocol = Protocol::v2;
  // provider: oidc
  std::optional<std::string> issuer;
  std::optional<std::string> device_authorization_endpoint;
  std::optional<std::string> token_endpoint;

  // Microsoft's legacy endpoints: a resource instead of scopes, and the device code named `code`.
  bool v1() const { return provider == Provider::microsoft && protocol == Protocol::v1; }
};

// What the identity code reads of one account: a value, so that it does not depend on the whole
// configuration (built by identity_options() in config/config.h; tests build it directly).
struct IdentityOptions {
  PlatformOptions platform;
  std::string name;  // the account's: logs and its token file
  std::string tenant = "common";
  std::string client_id;
  std::vector<std::string> scopes;      // as configured; requested_scopes() adds the OIDC ones
  std::optional<std::string> resource;  // v1
  // Where the browser sign-in ends; without one there is no browser sign-in.
  std::optional<std::string> redirect_uri;
  SharedSecret client_secret;  // confidential clients only (oidc)
};

}  // namespace g2m
