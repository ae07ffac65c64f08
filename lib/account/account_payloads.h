#pragma once

#include <optional>
#include <string>

#include "account/sign_out_reason.h"
#include "common/clock.h"
#include "identity/oauth.h"
#include "identity/sign_in.h"
#include "identity/token_set.h"
#include "json/json.h"

namespace g2m {

// The payloads of an account's topics and events (CONTRACT §1): pure functions of its state, so
// every shape is built in one place and unit-tested without a broker.

enum class AuthState { signed_out, pending, signed_in };
const char* to_string(AuthState s);

// auth/state.error: the auth_error that caused a signed_out with error, refresh_rejected or
// blocked.
struct StateError {
  std::string error, description;
  std::optional<TenantPolicy> policy;
  static StateError of(const AuthFailure& f) { return {f.error, f.description, f.policy}; }
};

// What auth/state is made of.
struct AuthStateView {
  AuthState state = AuthState::signed_out;
  SystemTime since{};
  const TokenSet* tokens = nullptr;      // the tokens in use (the old ones during a force)
  const SignInPrompt* prompt = nullptr;  // while a sign-in waits for the user
  std::optional<SignOutReason> reason;   // only read while signed_out
  const StateError* error = nullptr;     // only read while signed_out
};

std::string user_json(const std::optional<User>& user);
// auth/code's object, or "null" without a prompt.
std::string auth_code_json(const SignInPrompt* prompt);
std::string auth_state_json(const AuthStateView& view);

// The extra fields of events.
void code_issued_fields(json::Fields& f, const SignInPrompt& prompt);
void auth_error_fields(json::Fields& f, const AuthFailure& failure,
                       std::optional<long long> retry_in_seconds);
void signed_in_fields(json::Fields& f, const TokenSet& tokens);

}  // namespace g2m
