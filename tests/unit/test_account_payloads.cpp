// auth/state, auth/code and event fields (CONTRACT §1), as pure functions.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "account/account_payloads.h"

using namespace g2m;

namespace {

const SystemTime kT0 =
    std::chrono::sys_days{std::chrono::year{2026} / 12 / 3} + std::chrono::hours(10);

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

SignInPrompt device_prompt() {
  SignInPrompt p;
  p.method = SignInMethod::device_code;
  p.user_code = "E4AAFX9VN";
  p.verification_uri = "https://microsoft.com/devicelogin";
  p.message = "To sign in...";
  p.expires_at = kT0 + std::chrono::minutes(15);
  p.interval = Seconds(5);
  return p;
}

SignInPrompt browser_prompt() {
  SignInPrompt p;
  p.method = SignInMethod::browser;
  p.sign_in_url = "https://login.example/t/oauth2/v2.0/authorize?state=s&code_challenge=c";
  p.message = "Open the address...";
  p.expires_at = kT0 + std::chrono::minutes(15);
  return p;
}

}  // namespace

TEST_CASE("account payloads: auth/code of a device code names the method and has no sign_in_url") {
  const auto p = device_prompt();
  const auto d = parse(auth_code_json(&p));
  CHECK(std::string(d["method"].GetString()) == "device_code");
  CHECK(std::string(d["user_code"].GetString()) == "E4AAFX9VN");
  CHECK(d["sign_in_url"].IsNull());
  CHECK(d["verification_uri_complete"].IsNull());
  CHECK(d["interval"].GetInt() == 5);
  CHECK(std::string(d["expires_at"].GetString()) == "2026-12-03T10:15:00Z");
  CHECK(auth_code_json(nullptr) == "null");
}

TEST_CASE(
    "account payloads: auth/code of a browser sign-in has a sign_in_url and nothing to type") {
  const auto p = browser_prompt();
  const auto d = parse(auth_code_json(&p));
  CHECK(std::string(d["method"].GetString()) == "browser");
  CHECK(d["user_code"].IsNull());
  CHECK(d["verification_uri"].IsNull());
  CHECK(d["interval"].IsNull());
  CHECK(std::string(d["sign_in_url"].GetString()) == *p.sign_in_url);
}

TEST_CASE("account payloads: auth/state has the same eight keys in every state") {
  TokenSet tokens;
  tokens.expires_at = kT0 + std::chrono::hours(1);
  tokens.scopes = {"User.Read"};
  tokens.user = User{"Adele Vance", "adele@contoso.com"};
  const auto prompt = device_prompt();
  const StateError error{"invalid_grant", "the tenant's security defaults ...",
                         TenantPolicy::security_defaults};
  for (const AuthStateView& v :
       {AuthStateView{AuthState::signed_out, kT0, nullptr, nullptr, std::nullopt, nullptr},
        AuthStateView{AuthState::pending, kT0, nullptr, &prompt, std::nullopt, nullptr},
        AuthStateView{AuthState::signed_in, kT0, &tokens, nullptr, std::nullopt, nullptr},
        AuthStateView{AuthState::signed_out, kT0, nullptr, nullptr, SignOutReason::blocked,
                      &error}}) {
    const auto d = parse(auth_state_json(v));
    CHECK(d.MemberCount() == 8);
    for (const char* key :
         {"state", "since", "user", "expires_at", "scopes", "reason", "code", "error"}) {
      CHECK_MESSAGE(d.HasMember(key), key);
    }
  }
  const auto pending =
      parse(auth_state_json({AuthState::pending, kT0, nullptr, &prompt, std::nullopt, nullptr}));
  CHECK(std::string(pending["expires_at"].GetString()) == "2026-12-03T10:15:00Z");
  CHECK(std::string(pending["code"]["user_code"].GetString()) == "E4AAFX9VN");
  const auto in =
      parse(auth_state_json({AuthState::signed_in, kT0, &tokens, nullptr, std::nullopt, nullptr}));
  CHECK(std::string(in["user"]["username"].GetString()) == "adele@contoso.com");
  CHECK(in["reason"].IsNull());
  CHECK(in["error"].IsNull());
}

TEST_CASE("account payloads: a blocked account's auth/state says which policy and why") {
  const StateError error{"invalid_grant", "the tenant's security defaults block ...",
                         TenantPolicy::security_defaults};
  const auto d = parse(auth_state_json(
      {AuthState::signed_out, kT0, nullptr, nullptr, SignOutReason::blocked, &error}));
  CHECK(std::string(d["reason"].GetString()) == "blocked");
  CHECK(std::string(d["error"]["policy"].GetString()) == "security_defaults");
  CHECK(std::string(d["error"]["error"].GetString()) == "invalid_grant");
  // The error is shown only while signed out.
  const auto in = parse(
      auth_state_json({AuthState::pending, kT0, nullptr, nullptr, SignOutReason::blocked, &error}));
  CHECK(in["error"].IsNull());
  CHECK(in["reason"].IsNull());
}

TEST_CASE("account payloads: auth_error carries policy and retry_in, null when absent") {
  AuthFailure f;
  f.error = "invalid_grant";
  f.description = "AADSTS53003: blocked";
  f.policy = TenantPolicy::conditional_access;
  const auto d =
      parse(json::object([&](json::Fields& o) { auth_error_fields(o, f, std::nullopt); }));
  CHECK(std::string(d["policy"].GetString()) == "conditional_access");
  CHECK(d["retry_in"].IsNull());
  AuthFailure t;
  t.error = "network_error";
  const auto e = parse(json::object([&](json::Fields& o) { auth_error_fields(o, t, 5); }));
  CHECK(e["policy"].IsNull());
  CHECK(e["retry_in"].GetInt() == 5);
}

TEST_CASE("account payloads: code_issued of a browser sign-in carries its address") {
  const auto p = browser_prompt();
  const auto d = parse(json::object([&](json::Fields& o) { code_issued_fields(o, p); }));
  CHECK(std::string(d["method"].GetString()) == "browser");
  CHECK(std::string(d["sign_in_url"].GetString()) == *p.sign_in_url);
  CHECK(d["user_code"].IsNull());
  CHECK(std::string(d["expires_at"].GetString()) == "2026-12-03T10:15:00Z");
}
