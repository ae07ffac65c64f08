#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/logger.h"
#include "http/http.h"
#include "identity/identity_options.h"
#include "identity/oauth.h"

namespace g2m {

// Where an account's sign-in and refresh requests go.
struct Endpoints {
  std::string device_authorization;
  std::string token;
  std::optional<std::string> userinfo;  // oidc: for the user's name when the id_token has none
  // The browser sign-in's authorize endpoint (v2, or the discovery's authorization_endpoint);
  // nullopt where there is none (v1, explicit oidc endpoints without discovery).
  std::optional<std::string> authorization;
};

// Microsoft's endpoints of an account: /{tenant}/oauth2/v2.0/... or the v1 ones.
Endpoints microsoft_endpoints(const IdentityOptions& account);

// The discovery URLs of an issuer, in the order they are tried: OpenID Connect's
// {issuer}/.well-known/openid-configuration, then RFC 8414's
// /.well-known/oauth-authorization-server (inserted before the issuer's path).
std::vector<std::string> discovery_urls(const std::string& issuer);

// Parses a discovery document: the endpoints, or a sentence naming the key it lacks.
std::variant<Endpoints, std::string> parse_discovery(const std::string& body);

// Resolves endpoints for every account: at once for Microsoft and for explicit oidc endpoints,
// else by discovery (once, shared by all accounts; transient failures retried with backoff).
class EndpointResolver {
 public:
  using Result = std::variant<Endpoints, AuthFailure>;
  EndpointResolver(PlatformOptions platform, Http& http, Logger& log);

  // `done` runs with the endpoints, or with a failure: transient (retry_after says when the next
  // discovery attempt is, an HTTP-date Retry-After read on `clock`) or terminal (the document
  // lacks a key).
  void resolve(const IdentityOptions& account, const Clock& clock,
               std::function<void(Result)> done);

 private:
  void discover(std::size_t url_index, const Clock& clock);
  void finish(const Result& result);

  PlatformOptions platform_;
  Http& http_;
  Logger& log_;
  std::optional<Endpoints> discovered_;
  std::optional<Endpoints> explicit_;
  std::vector<std::function<void(Result)>> waiters_;
  bool in_flight_ = false;
  int failures_ = 0;
  Jitter jitter_{0x5eed};
};

}  // namespace g2m
