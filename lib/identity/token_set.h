#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/secret.h"

namespace g2m {

struct User {
  std::string name;
  std::string username;
  friend bool operator==(const User&, const User&) = default;
};

// What a successful token response leaves us with, and what lives in a token file.
struct TokenSet {
  Secret access_token;
  Secret refresh_token;             // may be empty (no offline_access granted)
  SystemTime expires_at{};          // access token expiry
  SystemTime obtained_at{};         // when the token response arrived (for lifetime-based refresh)
  std::vector<std::string> scopes;  // granted (the response's `scope`)
  std::optional<User> user;
};

// Which configuration the tokens were issued under: stored tokens of another binding are ignored.
struct TokenBinding {
  std::string client_id;
  std::string tenant;
  std::string authority;
  std::string protocol;  // "v2" or "v1" (or "oidc")
  friend bool operator==(const TokenBinding&, const TokenBinding&) = default;
};

}  // namespace g2m
