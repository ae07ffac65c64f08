#include <doctest/doctest.h>

#include <set>

#include "http/http.h"
#include "identity/authorization_code.h"

using namespace g2m;

namespace {
std::string param(const std::string& url, const std::string& name) {
  for (const auto& [k, v] : form_decode(url.substr(url.find('?') + 1))) {
    if (k == name) return v;
  }
  return "<absent>";
}
}  // namespace

TEST_CASE("authorization code: the S256 challenge matches RFC 7636 appendix B") {
  CHECK(pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") ==
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST_CASE("authorization code: every sign-in gets a fresh 32-byte verifier and 128-bit state") {
  std::set<std::string> verifiers, states;
  for (int i = 0; i < 50; ++i) {
    const Pkce p = make_pkce();
    CHECK(p.verifier.reveal().size() == 43);  // 32 bytes, base64url, no padding
    CHECK(p.verifier.reveal().find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(p.challenge == pkce_s256_challenge(p.verifier.reveal()));
    verifiers.insert(p.verifier.reveal());
    const std::string s = make_state();
    CHECK(s.size() >= 22);  // 16 bytes
    states.insert(s);
  }
  CHECK(verifiers.size() == 50);
  CHECK(states.size() == 50);
}

TEST_CASE("authorization code: the sign-in address carries every parameter, encoded") {
  AuthorizeRequest r;
  r.endpoint = "https://login.example/contoso.com/oauth2/v2.0/authorize";
  r.client_id = "11111111-2222-3333-4444-555555555555";
  r.redirect_uri = "https://login.microsoftonline.com/common/oauth2/nativeclient";
  r.scope = "User.Read openid profile offline_access";
  r.state = "st&ate";
  r.code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  const std::string url = authorize_url(r);
  CHECK(url.rfind(r.endpoint + "?", 0) == 0);
  CHECK(param(url, "client_id") == r.client_id);
  CHECK(param(url, "response_type") == "code");
  CHECK(param(url, "redirect_uri") == r.redirect_uri);
  CHECK(param(url, "response_mode") == "query");
  CHECK(param(url, "scope") == r.scope);
  CHECK(param(url, "state") == "st&ate");
  CHECK(param(url, "code_challenge") == r.code_challenge);
  CHECK(param(url, "code_challenge_method") == "S256");
  CHECK(url.find(' ') == std::string::npos);
}

TEST_CASE("authorization code: the pasted address, whole or as its query string") {
  for (const char* text :
       {"https://login.microsoftonline.com/common/oauth2/nativeclient?code=C%2B1&state=S&"
        "session_state=x",
        "  https://login.microsoftonline.com/common/oauth2/nativeclient?code=C%2B1&state=S \n",
        "?code=C%2B1&state=S", "code=C%2B1&state=S", "state=S&code=C%2B1#fragment"}) {
    const auto a = parse_redirect_address(text);
    REQUIRE(std::holds_alternative<RedirectCode>(a));
    CHECK(std::get<RedirectCode>(a).code.reveal() == "C+1");
    CHECK(std::get<RedirectCode>(a).state == "S");
  }
}

TEST_CASE("authorization code: an error in the address is the user's decline") {
  const auto a = parse_redirect_address(
      "https://x/nativeclient?error=access_denied&error_description=AADSTS65004%3A+User+declined"
      "&state=S");
  REQUIRE(std::holds_alternative<RedirectError>(a));
  CHECK(std::get<RedirectError>(a).error == "access_denied");
  CHECK(std::get<RedirectError>(a).description == "AADSTS65004: User declined");
  CHECK(std::get<RedirectError>(a).state == "S");
}

TEST_CASE("authorization code: what is not a usable address says why, never echoing it") {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c :
       {Case{"", "empty"}, Case{"hello world", "spaces"},
        Case{"just-text", "not a URL or query string"}, Case{"https://x/nativeclient", "no code"},
        Case{"https://x/nativeclient?state=S", "no code"},
        Case{"https://x/nativeclient?code=secretcode", "no state"},
        Case{"code=a\x01&state=b", "control"}}) {
    const auto a = parse_redirect_address(c.text);
    REQUIRE(std::holds_alternative<RedirectProblem>(a));
    const auto& why = std::get<RedirectProblem>(a).why;
    CHECK_MESSAGE(why.find(c.why) != std::string::npos, why);
    CHECK(why.find("secretcode") == std::string::npos);
  }
}
