#include "account/account_payloads.h"

#include "common/time_format.h"

namespace g2m {

namespace {
std::optional<std::string> policy_name(const std::optional<TenantPolicy>& policy) {
  return policy ? std::optional<std::string>(to_string(*policy)) : std::nullopt;
}

// user_code and verification_uri are null for a browser sign-in (nothing to type).
void code_fields(json::Fields& f, const SignInPrompt& p) {
  f.str("method", to_string(p.method));
  if (p.method == SignInMethod::browser) {
    f.null("user_code").null("verification_uri");
  } else {
    f.str("user_code", p.user_code).str("verification_uri", p.verification_uri);
  }
  f.opt_str("verification_uri_complete", p.verification_uri_complete);
  f.opt_str("sign_in_url", p.sign_in_url);
}
}  // namespace

const char* to_string(AuthState s) {
  switch (s) {
    case AuthState::signed_out:
      return "signed_out";
    case AuthState::pending:
      return "pending";
    case AuthState::signed_in:
      return "signed_in";
  }
  return "?";
}

std::string user_json(const std::optional<User>& user) {
  if (!user) return "null";
  return json::object(
      [&](json::Fields& f) { f.str("name", user->name).str("username", user->username); });
}

std::string auth_code_json(const SignInPrompt* p) {
  if (p == nullptr) return "null";
  return json::object([&](json::Fields& f) {
    code_fields(f, *p);
    f.str("message", p->message).str("expires_at", format_utc(p->expires_at));
    f.opt_num("interval",
              p->interval ? std::optional<long long>(p->interval->count()) : std::nullopt);
  });
}

std::string auth_state_json(const AuthStateView& v) {
  return json::object([&](json::Fields& f) {
    f.str("state", to_string(v.state)).str("since", format_utc(v.since));
    // While a forced re-sign-in is pending, user and scopes are still the old tokens'.
    f.raw("user", user_json(v.tokens ? v.tokens->user : std::nullopt));
    if (v.state == AuthState::signed_in && v.tokens) {
      f.str("expires_at", format_utc(v.tokens->expires_at));
    } else if (v.state == AuthState::pending && v.prompt != nullptr) {
      f.str("expires_at", format_utc(v.prompt->expires_at));
    } else {
      f.null("expires_at");
    }
    f.strings("scopes", v.tokens ? v.tokens->scopes : std::vector<std::string>{});
    const bool out = v.state == AuthState::signed_out;
    if (out && v.reason) {
      f.str("reason", to_string(*v.reason));
    } else {
      f.null("reason");
    }
    f.raw("code", auth_code_json(v.state == AuthState::pending ? v.prompt : nullptr));
    if (out && v.error != nullptr) {
      f.raw("error", json::object([&](json::Fields& e) {
              e.str("error", v.error->error).str("description", v.error->description);
              e.opt_str("policy", policy_name(v.error->policy));
            }));
    } else {
      f.null("error");
    }
  });
}

void code_issued_fields(json::Fields& f, const SignInPrompt& prompt) {
  code_fields(f, prompt);
  f.str("expires_at", format_utc(prompt.expires_at));
}

void auth_error_fields(json::Fields& f, const AuthFailure& failure,
                       std::optional<long long> retry_in_seconds) {
  f.str("error", failure.error).str("description", failure.description);
  f.opt_num("retry_in", retry_in_seconds);
  f.opt_str("policy", policy_name(failure.policy));
}

void signed_in_fields(json::Fields& f, const TokenSet& tokens) {
  f.raw("user", user_json(tokens.user));
  f.strings("scopes", tokens.scopes);
}

}  // namespace g2m
