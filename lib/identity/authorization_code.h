#pragma once

#include <string>
#include <variant>

#include "common/secret.h"

namespace g2m {

// The pure parts of the browser sign-in: the OAuth 2.0 authorization-code grant with PKCE
// (RFC 6749 §4.1, RFC 7636) for a native client (RFC 8252) whose redirect page needs no
// listening port. No I/O but the operating system's random numbers.

// RFC 7636 §4.1: a verifier of 32 random bytes, base64url without padding (43 characters),
// and its S256 challenge.
struct Pkce {
  Secret verifier;
  std::string challenge;
};
Pkce make_pkce();
std::string pkce_s256_challenge(const std::string& verifier);

// 128 random bits for `state` (RFC 6749 §10.12: binds the answer to this sign-in).
std::string make_state();

// base64url without padding (RFC 4648 §5).
std::string base64url(const unsigned char* data, std::size_t size);

struct AuthorizeRequest {
  std::string endpoint;  // <authority>/<tenant>/oauth2/v2.0/authorize, or the discovered one
  std::string client_id;
  std::string redirect_uri;
  std::string scope;
  std::string state;
  std::string code_challenge;
};
// The address the user opens: response_type=code, response_mode=query, S256.
std::string authorize_url(const AuthorizeRequest& request);

// What the address the browser ended at says (RFC 6749 §4.1.2).
struct RedirectCode {
  Secret code;
  std::string state;
};
struct RedirectError {
  std::string error;        // e.g. access_denied
  std::string description;  // first line of error_description
  std::string state;
};
struct RedirectProblem {
  std::string why;  // a sentence for the error reply; never holds the pasted text
};
using RedirectAnswer = std::variant<RedirectCode, RedirectError, RedirectProblem>;

// Accepts the whole address (`https://…/nativeclient?code=…&state=…`) or its query string
// alone (with or without the leading `?`); white space around it is ignored.
RedirectAnswer parse_redirect_address(const std::string& text);

}  // namespace g2m
