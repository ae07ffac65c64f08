#pragma once

#include <optional>

#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/identity_options.h"
#include "identity/oauth.h"
#include "identity/token_set.h"

namespace g2m {

// The three requests of the device flow and of token refresh, for Microsoft v2, the legacy v1
// endpoints and any RFC 8628 provider (docs/mqtt-api.md): built in one place for the agent and for
// `graph2mqtt login`.
HttpRequest device_code_request(const IdentityOptions& account, const Endpoints& endpoints);
HttpRequest device_token_request(const IdentityOptions& account, const Endpoints& endpoints,
                                 const Secret& device_code);
// The browser sign-in's code redemption (RFC 6749 §4.1.3, RFC 7636 §4.5).
HttpRequest authorization_code_request(const IdentityOptions& account, const Endpoints& endpoints,
                                       const Secret& code, const std::string& redirect_uri,
                                       const Secret& verifier);
HttpRequest refresh_request(const IdentityOptions& account, const Endpoints& endpoints,
                            const Secret& refresh_token);

// Which configuration tokens belong to (stored tokens of another binding are ignored).
TokenBinding token_binding(const IdentityOptions& account);

// A TokenSet from a token answer received at `now`. `previous` supplies what a refresh answer
// may leave out (refresh token, scopes, user).
TokenSet make_token_set(TokenResponse response, SystemTime now, const TokenSet* previous = nullptr);

}  // namespace g2m
