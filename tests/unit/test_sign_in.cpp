// The sign-in driver on a fake clock with a fake HTTP: every phase, both methods, tenant policy.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/time_format.h"
#include "identity/authorization_code.h"
#include "identity/sign_in.h"
#include "identity_rig.h"

using namespace g2m;
using namespace std::chrono_literals;

namespace {

using test::kKitchenClientId;

std::string b64(const std::string& text) {
  return base64url(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

std::string id_token() {
  return b64(R"({"alg":"none"})") + "." +
         b64(R"({"name":"Adele Vance","preferred_username":"adele@contoso.com"})") + ".sig";
}

std::string token_answer(bool with_id_token = true) {
  return std::string(R"({"token_type":"Bearer","scope":"User.Read","expires_in":3600,)") +
         R"("access_token":"AT-secret","refresh_token":"RT-secret")" +
         (with_id_token ? R"(,"id_token":")" + id_token() + "\"" : std::string()) + "}";
}

const char* const kDeviceCode =
    R"({"device_code":"DC-secret","user_code":"E4AAFX9VN","verification_uri":)"
    R"("https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"Go"})";

std::string refusal(const std::string& error, int code) {
  return R"({"error":")" + error + R"(","error_description":"AADSTS)" + std::to_string(code) +
         R"(: Blocked.","error_codes":[)" + std::to_string(code) + "]}";
}

std::string param(const std::string& text, const std::string& name) {
  for (const auto& [k, v] : form_decode(text.substr(text.find('?') + 1))) {
    if (k == name) return v;
  }
  return "<absent>";
}

// Records what the driver says, in order.
struct Recorder final : SignInEvents {
  std::vector<std::string> events;
  std::optional<SignInPrompt> prompt;
  std::optional<AuthFailure> last_failure;
  std::optional<TokenSet> tokens;
  std::optional<SignInEnd> end;
  std::optional<SignInMethod> ended_method;
  int stored = 0;

  void code_issued(const SignInPrompt& p) override {
    events.push_back(std::string("code_issued:") + to_string(p.method));
    prompt = p;
  }
  void interval_changed(const SignInPrompt& p) override {
    events.push_back("interval_changed");
    prompt = p;
  }
  void transient_error(const AuthFailure& f, Millis) override {
    events.push_back("transient_error:" + f.error);
    last_failure = f;
  }
  void switching_to_browser(const AuthFailure& f) override {
    events.push_back("switching_to_browser");
    last_failure = f;
  }
  void redemption_failed(const AuthFailure& f) override {
    events.push_back("redemption_failed:" + f.error);
    last_failure = f;
  }
  void redeemed(const TokenSet&) override {
    events.push_back("redeemed");
    ++stored;
  }
  void approved(TokenSet t) override {
    events.push_back("approved");
    tokens = std::move(t);
  }
  void ended(SignInEnd e, SignInMethod m, const AuthFailure* f) override {
    events.push_back("ended");
    end = e;
    ended_method = m;
    if (f) last_failure = *f;
  }
};

struct Rig : test::IdentityRig {
  explicit Rig(IdentityOptions account = test::kitchen_options())
      : IdentityRig(std::move(account)), driver(context(42), events) {}

  Recorder events;
  SignInDriver driver;
};

}  // namespace

TEST_CASE("sign-in: a device-code sign-in goes from the request to waiting, polling and approval") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, false);
  CHECK(rig.driver.phase() == SignInPhase::requesting_code);
  REQUIRE(rig.http.has_pending());
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/common/oauth2/v2.0/devicecode");
  rig.http.answer(200, kDeviceCode);
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  REQUIRE(rig.driver.prompt());
  CHECK(rig.driver.prompt()->user_code == "E4AAFX9VN");
  CHECK(rig.events.events == std::vector<std::string>{"code_issued:device_code"});

  // No poll before a whole interval has passed.
  const auto issued = rig.clock.steady();
  rig.run_until_request(60s);
  REQUIRE(rig.http.has_pending());
  CHECK(rig.clock.steady() - issued == 5s);
  CHECK(param("?" + rig.http.oldest().body, "device_code") == "DC-secret");
  rig.http.answer(400, R"({"error":"authorization_pending"})");
  rig.run_until_request(60s);
  CHECK(rig.clock.steady() - issued == 10s);
  rig.http.answer(200, token_answer());
  // The approval is handled when the loop has time (after due timers: other accounts' polls).
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  rig.loop.run_once(0ms);
  CHECK(rig.driver.phase() == SignInPhase::idle);
  CHECK(rig.events.events ==
        std::vector<std::string>{"code_issued:device_code", "redeemed", "approved"});
  REQUIRE(rig.events.tokens);
  REQUIRE(rig.events.tokens->user);
  CHECK(rig.events.tokens->user->username == "adele@contoso.com");
}

TEST_CASE("sign-in: an approval not yet handled is dropped by a cancel, never adopted later") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, false);
  rig.http.answer(200, kDeviceCode);
  rig.run_until_request(60s);
  rig.http.answer(200, token_answer());
  rig.driver.cancel();
  rig.loop.run_once(0ms);
  CHECK(rig.driver.phase() == SignInPhase::idle);
  CHECK(rig.events.stored == 0);
  CHECK_FALSE(rig.events.tokens.has_value());
  CHECK(rig.events.events == std::vector<std::string>{"code_issued:device_code"});  // silent
}

TEST_CASE("sign-in: without a name in the id_token the user is looked up before approval") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, false);
  rig.http.answer(200, kDeviceCode);
  rig.run_until_request(60s);
  rig.http.answer(200, token_answer(/*with_id_token=*/false));
  rig.loop.run_once(0ms);
  CHECK(rig.driver.phase() == SignInPhase::fetching_user);
  CHECK(rig.events.stored == 1);  // stored before the access token is used
  REQUIRE(rig.http.has_pending());
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/v1.0/me");
  rig.http.answer(200, R"({"displayName":"Adele Vance","userPrincipalName":"adele@contoso.com"})");
  CHECK(rig.driver.phase() == SignInPhase::idle);
  REQUIRE(rig.events.tokens->user);
  CHECK(rig.events.tokens->user->name == "Adele Vance");
}

TEST_CASE("sign-in: a failed device-code request is retried with backoff and says when") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, false);
  rig.http.answer(503, "busy");
  CHECK(rig.events.events == std::vector<std::string>{"transient_error:http_503"});
  CHECK(rig.driver.phase() == SignInPhase::requesting_code);
  REQUIRE(rig.driver.retry_in());
  CHECK(*rig.driver.retry_in() > 0ms);
  CHECK_FALSE(rig.driver.prompt());
  rig.run_until_request(10min);
  REQUIRE(rig.http.has_pending());
  CHECK(rig.http.all().size() == 2);
  rig.http.answer(200, kDeviceCode);
  CHECK_FALSE(rig.driver.retry_in());
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
}

TEST_CASE("sign-in: a browser sign-in sends nothing until the address comes back") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  CHECK_FALSE(rig.http.has_pending());
  REQUIRE(rig.driver.prompt());
  const auto& p = *rig.driver.prompt();
  CHECK(p.method == SignInMethod::browser);
  REQUIRE(p.sign_in_url);
  const std::string& url = *p.sign_in_url;
  CHECK(url.rfind("http://127.0.0.1:9/common/oauth2/v2.0/authorize?", 0) == 0);
  CHECK(param(url, "client_id") == kKitchenClientId);
  CHECK(param(url, "redirect_uri") == "http://127.0.0.1:9/common/oauth2/nativeclient");
  CHECK(param(url, "code_challenge_method") == "S256");
  CHECK(param(url, "scope").find("offline_access") != std::string::npos);
  CHECK(p.expires_at - rig.clock.system() == 15min);
}

TEST_CASE("sign-in: a browser sign-in redeems the pasted code once, with the PKCE verifier") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  const std::string url = *rig.driver.prompt()->sign_in_url;
  std::optional<CompleteOutcome> outcome;
  rig.driver.complete(
      "https://login.microsoftonline.com/common/oauth2/nativeclient?code=AUTH-CODE&state=" +
          param(url, "state") + "&session_state=s",
      [&](CompleteOutcome o) { outcome = o; });
  CHECK_FALSE(outcome);  // the reply waits for the token answer
  CHECK(rig.driver.phase() == SignInPhase::redeeming);
  REQUIRE(rig.http.has_pending());
  const std::string body = "?" + rig.http.oldest().body;
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/common/oauth2/v2.0/token");
  CHECK(param(body, "grant_type") == "authorization_code");
  CHECK(param(body, "code") == "AUTH-CODE");
  CHECK(param(body, "redirect_uri") == param(url, "redirect_uri"));
  CHECK(pkce_s256_challenge(param(body, "code_verifier")) == param(url, "code_challenge"));
  rig.http.answer(200, token_answer());
  REQUIRE(outcome);
  CHECK(outcome->ok);
  CHECK(rig.driver.phase() == SignInPhase::idle);
  CHECK(rig.events.events ==
        std::vector<std::string>{"code_issued:browser", "redeemed", "approved"});
}

TEST_CASE("sign-in: an address of another sign-in or without a code is refused and it waits on") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  for (const char* address : {"https://x/nativeclient?code=C&state=not-this-one",
                              "https://x/nativeclient?state=whatever", "nonsense"}) {
    std::optional<CompleteOutcome> outcome;
    rig.driver.complete(address, [&](CompleteOutcome o) { outcome = o; });
    REQUIRE(outcome);
    CHECK_FALSE(outcome->ok);
    CHECK_FALSE(outcome->error.empty());
  }
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  CHECK(rig.http.all().empty());
  CHECK(rig.events.events == std::vector<std::string>{"code_issued:browser"});
}

TEST_CASE("sign-in: error=access_denied in the address ends the browser sign-in as declined") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  const std::string state = param(*rig.driver.prompt()->sign_in_url, "state");
  std::optional<CompleteOutcome> outcome;
  rig.driver.complete("?error=access_denied&error_description=declined&state=" + state,
                      [&](CompleteOutcome o) { outcome = o; });
  REQUIRE(outcome);
  CHECK_FALSE(outcome->ok);
  CHECK(outcome->error.find("declined") != std::string::npos);
  CHECK(rig.events.end == SignInEnd::declined);
  CHECK(rig.driver.phase() == SignInPhase::idle);
}

TEST_CASE("sign-in: a redemption that fails in transit is never resent: the user signs in again") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  const std::string state = param(*rig.driver.prompt()->sign_in_url, "state");
  const std::string address = "?code=FIRST&state=" + state;
  std::optional<CompleteOutcome> outcome;
  rig.driver.complete(address, [&](CompleteOutcome o) { outcome = o; });
  rig.http.fail(TransportError::network);
  REQUIRE(outcome);
  CHECK_FALSE(outcome->ok);
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  CHECK(rig.events.events.back() == "redemption_failed:network_error");
  // The same address again: the code is not sent a second time.
  outcome.reset();
  rig.driver.complete(address, [&](CompleteOutcome o) { outcome = o; });
  REQUIRE(outcome);
  CHECK(outcome->error.find("already") != std::string::npos);
  CHECK(rig.http.all().size() == 1);
  // A new address (the user signed in again) is redeemed with the same verifier.
  rig.driver.complete("?code=SECOND&state=" + state, [&](CompleteOutcome o) { outcome = o; });
  CHECK(rig.http.all().size() == 2);
  CHECK(param("?" + rig.http.all()[0].body, "code_verifier") ==
        param("?" + rig.http.all()[1].body, "code_verifier"));
  rig.http.answer(200, token_answer());
  CHECK(outcome->ok);
}

TEST_CASE("sign-in: the browser sign-in expires after 15 minutes as code_expired") {
  Rig rig;
  rig.driver.start(SignInMethod::browser, false);
  rig.run_until_request(16min);
  CHECK(rig.events.end == SignInEnd::code_expired);
  CHECK(rig.events.ended_method == SignInMethod::browser);  // so renew_code does not apply
  CHECK(rig.driver.phase() == SignInPhase::idle);
  CHECK(rig.http.all().empty());
}

TEST_CASE("sign-in: under auto a policy refusal of the device code starts a browser sign-in") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, /*fallback_to_browser=*/true);
  rig.http.answer(400, refusal("invalid_grant", 530035));
  CHECK(rig.events.events ==
        std::vector<std::string>{"switching_to_browser", "code_issued:browser"});
  REQUIRE(rig.events.last_failure);
  CHECK(rig.events.last_failure->policy == TenantPolicy::security_defaults);
  CHECK(rig.driver.phase() == SignInPhase::waiting_for_user);
  CHECK(rig.driver.method() == SignInMethod::browser);
  CHECK(rig.http.all().size() == 1);  // never retried
}

TEST_CASE("sign-in: a policy refusal at the poll after the user signed in also switches") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, true);
  rig.http.answer(200, kDeviceCode);
  rig.run_until_request(60s);
  rig.http.answer(400, refusal("access_denied", 53003));
  CHECK(rig.events.events == std::vector<std::string>{"code_issued:device_code",
                                                      "switching_to_browser",
                                                      "code_issued:browser"});
  CHECK(rig.events.last_failure->policy == TenantPolicy::conditional_access);
  // The device code's polling stopped: no request goes out any more.
  rig.run_until_request(1min);
  CHECK(rig.http.all().size() == 2);
}

TEST_CASE("sign-in: without the fallback a policy refusal ends the sign-in as blocked") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, false);
  rig.http.answer(200, kDeviceCode);
  rig.run_until_request(60s);
  rig.http.answer(400, refusal("invalid_grant", 53003));
  CHECK(rig.events.end == SignInEnd::blocked);
  CHECK(rig.events.last_failure->policy == TenantPolicy::conditional_access);
  CHECK(rig.driver.phase() == SignInPhase::idle);
  rig.run_until_request(20min);
  CHECK(rig.http.all().size() == 2);
}

TEST_CASE("sign-in: a Retry-After date is counted on the loop's clock, not the wall clock") {
  Rig rig;  // the fake clock says 2026-11-26 19:00:00 UTC
  rig.driver.start(SignInMethod::device_code, false);
  rig.http.answer(test::busy_until("Thu, 26 Nov 2026 19:02:00 GMT"));
  REQUIRE(rig.driver.retry_in());
  CHECK(*rig.driver.retry_in() == 120s);
  rig.run_until_request(10min);
  REQUIRE(rig.http.has_pending());
  CHECK(rig.clock.system() == *parse_http_date("Thu, 26 Nov 2026 19:02:00 GMT"));
}

TEST_CASE("sign-in: discovery's Retry-After date is counted on the loop's clock too") {
  IdentityOptions oidc = test::kitchen_options();
  oidc.platform.provider = Provider::oidc;
  oidc.platform.issuer = "http://127.0.0.1:9/realm";
  Rig rig(oidc);
  rig.driver.start(SignInMethod::device_code, false);
  REQUIRE(rig.http.has_pending());
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/realm/.well-known/openid-configuration");
  rig.http.answer(test::busy_until("Thu, 26 Nov 2026 19:03:00 GMT"));
  CHECK(rig.events.events == std::vector<std::string>{"transient_error:http_503"});
  REQUIRE(rig.driver.retry_in());
  CHECK(*rig.driver.retry_in() == 180s);
}

TEST_CASE("sign-in: a driver gone while the discovery it waits for is under way is never called") {
  // A reload removes an account whose sign-in waits for the shared OpenID discovery: the
  // resolver still holds its callback when the discovery answers.
  IdentityOptions oidc = test::kitchen_options();
  oidc.platform.provider = Provider::oidc;
  oidc.platform.issuer = "http://127.0.0.1:9/realm";
  Rig rig(oidc);
  Recorder gone_events;
  auto gone = std::make_unique<SignInDriver>(rig.context(7), gone_events);
  gone->start(SignInMethod::device_code, false);
  rig.driver.start(SignInMethod::device_code, false);
  REQUIRE(rig.http.pending_count() == 1);  // one discovery for both
  gone.reset();
  rig.http.answer(200, R"({"device_authorization_endpoint":"http://127.0.0.1:9/realm/device",)"
                       R"("token_endpoint":"http://127.0.0.1:9/realm/token"})");
  // The driver still alive goes on to its code; the one that went hears nothing.
  REQUIRE(rig.http.has_pending());
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/realm/device");
  CHECK(rig.http.pending_count() == 1);
  CHECK(gone_events.events.empty());
  CHECK(rig.driver.phase() == SignInPhase::requesting_code);
}

TEST_CASE("sign-in: protocol v1 has no browser sign-in, so the fallback cannot apply") {
  CHECK(Rig().driver.browser_possible());
  IdentityOptions v1 = test::kitchen_options();
  v1.platform.protocol = Protocol::v1;
  Rig rig(v1);
  CHECK_FALSE(rig.driver.browser_possible());
  rig.driver.start(SignInMethod::device_code, true);
  CHECK(rig.http.oldest().url == "http://127.0.0.1:9/common/oauth2/devicecode");
  rig.http.answer(200,
                  R"({"device_code":"d","user_code":"U","verification_url":"https://x","error":)"
                  R"("invalid_grant","error_description":"AADSTS530035: Blocked.",)"
                  R"("error_codes":[530035]})");
  CHECK(rig.events.end == SignInEnd::blocked);
}

TEST_CASE("sign-in: cancel stops every request and timer, and nothing is said") {
  Rig rig;
  rig.driver.start(SignInMethod::device_code, true);
  rig.http.answer(200, kDeviceCode);
  rig.run_until_request(60s);
  REQUIRE(rig.http.has_pending());
  rig.driver.cancel();
  CHECK_FALSE(rig.http.has_pending());
  CHECK(rig.http.cancelled() == 1);
  CHECK(rig.driver.phase() == SignInPhase::idle);
  rig.run_until_request(30min);
  CHECK(rig.events.events == std::vector<std::string>{"code_issued:device_code"});
}
