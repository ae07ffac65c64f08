// The simulated identity platform's browser sign-in (authorization code with PKCE) and tenant
// policy, driven directly over HTTPS with the harness: what the agent's tests rely on must
// behave as Entra documents before any of them does.
#include <cctype>
#include <map>

#include <doctest/doctest.h>

#include "harness.h"

using namespace g2m::test;

namespace {

// RFC 7636 Appendix B: this verifier's S256 challenge (computed independently of the simulator).
constexpr const char* kVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr const char* kChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
constexpr const char* kClient = "00000000-0000-0000-0000-0000000000b1";
constexpr const char* kNativeClient =
    "https://login.microsoftonline.com/common/oauth2/nativeclient";

std::string encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
  return out;
}

std::string decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The query (or fragment) parameters of an address.
std::map<std::string, std::string> params_of(const std::string& address) {
  std::map<std::string, std::string> out;
  const auto start = address.find_first_of("?#");
  if (start == std::string::npos) return out;
  std::size_t at = start + 1;
  while (at <= address.size()) {
    auto end = address.find('&', at);
    if (end == std::string::npos) end = address.size();
    const auto pair = address.substr(at, end - at);
    const auto eq = pair.find('=');
    if (!pair.empty()) {
      out[decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
    }
    at = end + 1;
  }
  return out;
}

struct Authorize {
  std::string tenant = "common";
  std::string client_id = kClient;
  std::string redirect_uri = kNativeClient;
  std::string scope = "User.Read openid profile offline_access";
  std::string state = "st4te-0123456789abcdef";
  std::string challenge = kChallenge;
  std::string response_mode = "query";
  std::string extra{};  // more "&name=value"

  std::string path() const {
    std::string out =
        "/" + tenant + "/oauth2/v2.0/authorize?response_type=code&response_mode=" + response_mode;
    if (!client_id.empty()) out += "&client_id=" + encode(client_id);
    if (!redirect_uri.empty()) out += "&redirect_uri=" + encode(redirect_uri);
    if (!scope.empty()) out += "&scope=" + encode(scope);
    if (!state.empty()) out += "&state=" + encode(state);
    if (!challenge.empty()) out += "&code_challenge=" + challenge + "&code_challenge_method=S256";
    return out + extra;
  }
};

HttpReply redeem(Simulator& sim, const std::string& code, const std::string& verifier,
                 const std::string& redirect_uri = kNativeClient) {
  return sim.https_post_form("/common/oauth2/v2.0/token",
                             "grant_type=authorization_code&client_id=" + encode(kClient) +
                                 "&code=" + encode(code) + "&redirect_uri=" + encode(redirect_uri) +
                                 "&code_verifier=" + encode(verifier) +
                                 "&scope=" + encode("User.Read openid profile offline_access"));
}

// An Entra error answer: HTTP 400, `error`, error_codes [code], error_description "AADSTSn: ".
void check_entra_error(const HttpReply& reply, const char* error, long code) {
  INFO(reply.body, reply.error);
  CHECK(reply.status == 400);
  const auto json = parse_json(reply.body);
  CHECK(json_str(json, "error") == error);
  REQUIRE(json.HasMember("error_codes"));
  REQUIRE(json["error_codes"].IsArray());
  REQUIRE(json["error_codes"].Size() == 1);
  CHECK(json["error_codes"][0].GetInt64() == code);
  CHECK(json_str(json, "error_description").rfind("AADSTS" + std::to_string(code) + ": ", 0) == 0);
  for (const char* key : {"timestamp", "trace_id", "correlation_id"}) {
    CHECK_MESSAGE(!json_str(json, key).empty(), key);
  }
}

std::string device_code_tokens(Simulator& sim, const std::string& tenant = "common") {
  const auto answer = sim.https_post_form(
      "/" + tenant + "/oauth2/v2.0/devicecode",
      "client_id=" + encode(kClient) + "&scope=" + encode("User.Read offline_access"));
  REQUIRE_MESSAGE(answer.status == 200, answer.body);
  const auto json = parse_json(answer.body);
  sim.approve(json_str(json, "user_code"));
  const auto tokens = sim.https_post_form(
      "/" + tenant + "/oauth2/v2.0/token",
      "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=" + encode(kClient) +
          "&device_code=" + json_str(json, "device_code"));
  REQUIRE_MESSAGE(tokens.status == 200, tokens.body);
  return json_str(parse_json(tokens.body), "refresh_token");
}

HttpReply refresh(Simulator& sim, const std::string& refresh_token) {
  return sim.https_post_form("/common/oauth2/v2.0/token",
                             "grant_type=refresh_token&client_id=" + encode(kClient) +
                                 "&refresh_token=" + encode(refresh_token));
}

}  // namespace

TEST_CASE(
    "simulator: a browser sign-in redirects with code and state, and the code redeems once "
    "with the PKCE S256 verifier" *
    doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki);
  const Authorize request;

  // A plain GET of the authorize URL is the user signing in at once: a 302, never followed.
  const HttpReply signed_in = sim.https_get(request.path());
  INFO(signed_in.body, signed_in.error);
  CHECK(signed_in.status == 302);
  CHECK(signed_in.location.rfind(std::string(kNativeClient) + "?code=", 0) == 0);
  const auto params = params_of(signed_in.location);
  CHECK(params.at("state") == request.state);
  CHECK(params.count("session_state") == 1);
  const auto code = params.at("code");
  CHECK(code.size() >= 64);

  // The wrong verifier fails and leaves the code redeemable; the right one redeems it.
  check_entra_error(redeem(sim, code, "x" + std::string(kVerifier).substr(1)), "invalid_grant",
                    501481);
  check_entra_error(redeem(sim, code, ""), "invalid_grant", 501481);
  const HttpReply tokens = redeem(sim, code, kVerifier);
  REQUIRE_MESSAGE(tokens.status == 200, tokens.body);
  const auto json = parse_json(tokens.body);
  CHECK(json_str(json, "token_type") == "Bearer");
  CHECK(!json_str(json, "access_token").empty());
  CHECK(!json_str(json, "id_token").empty());
  const auto refresh_token = json_str(json, "refresh_token");
  REQUIRE(!refresh_token.empty());
  CHECK(sim.refresh_token_origin(refresh_token) == "authorization_code");

  // Single use: AADSTS54005.
  check_entra_error(redeem(sim, code, kVerifier), "invalid_grant", 54005);
  // Its refresh token refreshes, and the new one keeps the origin.
  const HttpReply refreshed = refresh(sim, refresh_token);
  REQUIRE_MESSAGE(refreshed.status == 200, refreshed.body);
  CHECK(sim.refresh_token_origin(json_str(parse_json(refreshed.body), "refresh_token")) ==
        "authorization_code");

  const auto counters = sim.counters();
  INFO(counters.json);
  CHECK(counters.authorize == 1);
  CHECK(counters.authorization_codes_issued == 1);
  CHECK(counters.authorization_code_redemptions == 1);
  CHECK(counters.pkce_failures == 2);
  CHECK(counters.code_reuse == 1);
  CHECK(counters.redirect_uri_mismatches == 0);
  CHECK(counters.authorize_without_pkce == 0);
  CHECK(counters.policy_refusals == 0);
}

TEST_CASE(
    "simulator: /authorize refuses an unregistered redirect URI on an error page, accepts "
    "loopback and its own nativeclient, and the user can decline" *
    doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki);

  Authorize evil;
  evil.redirect_uri = "https://evil.example/cb";
  const HttpReply page = sim.https_get(evil.path());
  CHECK(page.status == 400);
  CHECK(page.location.empty());
  CHECK(page.body.find("AADSTS50011") != std::string::npos);
  const BrowserOutcome refused = sim.browser_authorize(sim.https_url() + evil.path());
  CHECK(refused.status == 400);
  CHECK(refused.location.empty());
  CHECK(refused.error_codes == std::vector<long>{50011});
  CHECK(sim.counters().redirect_uri_mismatches == 2);

  Authorize no_client;
  no_client.client_id.clear();
  CHECK(sim.browser_authorize(sim.https_url() + no_client.path()).error_codes ==
        std::vector<long>{900144});

  // Errors once the redirect URI is known good go back to it, with the state.
  Authorize no_scope;
  no_scope.scope.clear();
  const BrowserOutcome missing = sim.browser_authorize(sim.https_url() + no_scope.path());
  CHECK(missing.status == 302);
  CHECK(params_of(missing.location).at("error") == "invalid_request");
  CHECK(params_of(missing.location).at("state") == no_scope.state);
  Authorize short_challenge;
  short_challenge.challenge = "tooshort";
  CHECK(sim.browser_authorize(sim.https_url() + short_challenge.path()).error_codes ==
        std::vector<long>{501491});

  for (const std::string& uri :
       {std::string("http://localhost"), std::string("http://localhost:8400/cb"),
        sim.https_url() + "/common/oauth2/nativeclient"}) {
    Authorize ok;
    ok.redirect_uri = uri;
    const auto address = sim.browser_sign_in(sim.https_url() + ok.path());
    CHECK_MESSAGE(address.rfind(uri + "?code=", 0) == 0, address);
  }

  // response_mode=fragment puts the answer after '#'; a plain GET through browser_get.
  Authorize fragment;
  fragment.response_mode = "fragment";
  fragment.redirect_uri = "http://127.0.0.1:9/cb";
  const HttpReply in_fragment = sim.browser_get(sim.https_url() + fragment.path());
  CHECK(in_fragment.status == 302);
  CHECK_MESSAGE(in_fragment.location.rfind("http://127.0.0.1:9/cb#code=", 0) == 0,
                in_fragment.location);

  const auto declined = params_of(sim.browser_decline(sim.https_url() + Authorize{}.path()));
  CHECK(declined.at("error") == "access_denied");
  CHECK(declined.at("error_description").rfind("AADSTS65004: ", 0) == 0);
  CHECK(declined.at("state") == Authorize{}.state);
  CHECK(declined.count("code") == 0);

  // decline_browser_sign_in makes a plain GET decline too.
  sim.config(R"({"decline_browser_sign_in":true})");
  const HttpReply get_declined = sim.https_get(Authorize{}.path());
  CHECK(get_declined.status == 302);
  CHECK(params_of(get_declined.location).at("error") == "access_denied");
  const auto counters = sim.counters();
  INFO(counters.json);
  CHECK(counters.authorization_codes_issued == 4);
}

TEST_CASE("simulator: an authorization code needs its own redirect URI and expires" *
          doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki);
  Authorize request;
  request.redirect_uri = "http://localhost:8400/cb";
  const auto code = params_of(sim.browser_sign_in(sim.https_url() + request.path())).at("code");
  check_entra_error(redeem(sim, code, kVerifier, kNativeClient), "invalid_grant", 50011);
  CHECK(sim.counters().redirect_uri_mismatches == 1);
  sim.expire_authorization_codes();
  check_entra_error(redeem(sim, code, kVerifier, request.redirect_uri), "invalid_grant", 70008);
  CHECK(sim.counters().authorization_code_redemptions == 0);

  // Without PKCE the code redeems without a verifier (Entra only recommends PKCE to native apps),
  // and the request is counted.
  Authorize plain;
  plain.challenge.clear();
  const auto other = params_of(sim.browser_sign_in(sim.https_url() + plain.path())).at("code");
  CHECK(redeem(sim, other, "").status == 200);
  CHECK(sim.counters().authorize_without_pkce == 1);
}

TEST_CASE(
    "simulator: tenant policy refuses the device code at the request, at the poll and at "
    "refresh, never the browser sign-in" *
    doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki, {"--interval", "0"});
  const auto device_refresh = device_code_tokens(sim);
  CHECK(sim.refresh_token_origin(device_refresh) == "device_code");
  const auto browser_code =
      params_of(sim.browser_sign_in(sim.https_url() + Authorize{}.path())).at("code");
  const auto browser_tokens = redeem(sim, browser_code, kVerifier);
  REQUIRE(browser_tokens.status == 200);
  const auto browser_refresh = json_str(parse_json(browser_tokens.body), "refresh_token");

  // A code issued before the policy and approved is refused at its poll too.
  const auto before = sim.https_post_form("/common/oauth2/v2.0/devicecode",
                                          "client_id=" + encode(kClient) + "&scope=User.Read");
  REQUIRE_MESSAGE(before.status == 200, before.body);
  const auto early_code = parse_json(before.body);
  sim.approve(json_str(early_code, "user_code"));

  // Security defaults, sent as access_denied: /devicecode is refused.
  sim.set_tenant_policy({.device_code = "refuse_at_request",
                         .refuse_device_code_refresh = true,
                         .error = "access_denied"});
  const auto request_scope = "client_id=" + encode(kClient) + "&scope=User.Read";
  check_entra_error(sim.https_post_form("/common/oauth2/v2.0/devicecode", request_scope),
                    "access_denied", 530035);
  check_entra_error(
      sim.https_post_form(
          "/common/oauth2/v2.0/token",
          "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=" + encode(kClient) +
              "&device_code=" + json_str(early_code, "device_code")),
      "access_denied", 530035);
  // Refresh tokens of device-code sign-ins are refused (530036), browser ones are not.
  check_entra_error(refresh(sim, device_refresh), "access_denied", 530036);
  CHECK(refresh(sim, browser_refresh).status == 200);
  CHECK(sim.browser_sign_in(sim.https_url() + Authorize{}.path()).find("code=") !=
        std::string::npos);

  // Conditional Access on one tenant, at the poll after the user approved.
  sim.set_tenant_policy({.tenant = "contoso.onmicrosoft.com",
                         .device_code = "refuse_at_poll",
                         .device_code_error_code = 53003,
                         .description = "Blocked by the test's policy."});
  const auto issued =
      sim.https_post_form("/contoso.onmicrosoft.com/oauth2/v2.0/devicecode", request_scope);
  REQUIRE_MESSAGE(issued.status == 200, issued.body);
  const auto code = parse_json(issued.body);
  const auto poll = [&] {
    return sim.https_post_form(
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=" + encode(kClient) +
            "&device_code=" + json_str(code, "device_code"));
  };
  check_entra_error(poll(), "authorization_pending", 70016);
  sim.approve(json_str(code, "user_code"));
  const HttpReply refused = poll();
  check_entra_error(refused, "invalid_grant", 53003);
  CHECK(json_str(parse_json(refused.body), "error_description")
            .rfind("AADSTS53003: Blocked by the test's policy.\r\n", 0) == 0);
  check_entra_error(poll(), "invalid_grant", 90120);
  CHECK(sim.counters().policy_refusals == 4);
  const auto codes = parse_json(sim.get("/_sim/codes").body);
  CHECK(json_str(codes["codes"][codes["codes"].Size() - 1], "state") == "refused");

  sim.clear_tenant_policies();
  CHECK(device_code_tokens(sim) != "");
  CHECK(refresh(sim, device_refresh).status == 200);
  const auto counters = sim.counters();
  INFO(counters.json);
  CHECK(counters.policy_refusals == 4);
  CHECK(counters.interval_violations == 0);
}

TEST_CASE("simulator: /_sim/codes lists each poll's lateness, negative for an early poll" *
          doctest::skip(!simulator_available())) {
  TempDir tmp;
  const Pki pki = make_pki(tmp / "pki");
  Simulator sim(pki, {"--interval", "1"});
  const auto issued = sim.https_post_form("/common/oauth2/v2.0/devicecode",
                                          "client_id=" + encode(kClient) + "&scope=User.Read");
  REQUIRE_MESSAGE(issued.status == 200, issued.body);
  const auto poll = [&] {
    return sim.https_post_form(
        "/common/oauth2/v2.0/token",
        "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=" + encode(kClient) +
            "&device_code=" + json_str(parse_json(issued.body), "device_code"));
  };
  // At once: due 1 s after the answer. Again at once: due 6 s after the first poll (slow_down +5
  // s).
  check_entra_error(poll(), "slow_down", 70016);
  check_entra_error(poll(), "slow_down", 70016);
  const auto codes = parse_json(sim.get("/_sim/codes").body);
  const auto& lateness = codes["codes"][0]["poll_lateness_ms"];
  REQUIRE(lateness.IsArray());
  REQUIRE(lateness.Size() == 2);
  CHECK(lateness[0].GetDouble() < 0);
  CHECK(lateness[0].GetDouble() > -1000);
  CHECK(lateness[1].GetDouble() < -1000);
  CHECK(lateness[1].GetDouble() > -6000);
  CHECK(sim.counters().interval_violations == 2);
}
