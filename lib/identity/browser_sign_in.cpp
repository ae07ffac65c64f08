#include "identity/browser_sign_in.h"

#include "common/time_format.h"
#include "identity/identity_requests.h"

namespace g2m {

BrowserSignIn::BrowserSignIn(const SignInContext& context, SignInSteps& steps)
    : ctx_(context), steps_(steps) {}

BrowserSignIn::~BrowserSignIn() {
  stop();
}

void BrowserSignIn::stop() {
  if (request_) ctx_.http.cancel(*request_);
  request_.reset();
}

void BrowserSignIn::begin(const Endpoints& endpoints) {
  endpoints_ = endpoints;
  if (!endpoints.authorization || !ctx_.account.redirect_uri) {
    AuthFailure f;
    f.kind = AuthFailure::Kind::terminal;
    f.error = "invalid_response";
    f.description = !endpoints.authorization
                        ? "the identity provider has no authorization_endpoint, so the browser "
                          "sign-in is not possible"
                        : "the account has no redirect_uri, so the browser sign-in is not possible";
    steps_.refused(f);
    return;
  }
  // A fresh verifier and state for every sign-in (RFC 7636 §4.1, RFC 6749 §10.12).
  pkce_ = make_pkce();
  state_ = make_state();
  redirect_uri_ = *ctx_.account.redirect_uri;
  sent_codes_.clear();
  AuthorizeRequest request;
  request.endpoint = *endpoints.authorization;
  request.client_id = ctx_.account.client_id;
  request.redirect_uri = redirect_uri_;
  request.scope = join_scopes(requested_scopes(ctx_.account.scopes));
  request.state = state_;
  request.code_challenge = pkce_.challenge;

  SignInPrompt p;
  p.method = SignInMethod::browser;
  p.sign_in_url = authorize_url(request);
  p.message =
      "To sign in, open the sign-in address on a phone or computer (scan the QR code), sign in, "
      "then paste the address the browser ends at into the display or send it with the "
      "complete command.";
  p.expires_at = ctx_.loop.clock().system() + kLifetime;
  p.expires_at_steady = ctx_.loop.clock().steady() + kLifetime;
  prompt_ = std::move(p);
  ctx_.log.info(ctx_.account.name, ": browser sign-in started, expires at ",
                format_utc(prompt_->expires_at));
  steps_.waiting(*prompt_);
}

BrowserSignIn::Check BrowserSignIn::complete(const std::string& address) {
  if (request_) return Refused{"a sign-in code is being redeemed already; wait for its answer"};
  auto answer = parse_redirect_address(address);
  if (auto* problem = std::get_if<RedirectProblem>(&answer)) return Refused{problem->why};
  if (auto* error = std::get_if<RedirectError>(&answer)) {
    if (error->state != state_) {
      return Refused{"the address's state is not this sign-in's (an old or another sign-in)"};
    }
    return Declined{std::move(*error)};
  }
  auto& code = std::get<RedirectCode>(answer);
  if (code.state != state_) {
    return Refused{"the address's state is not this sign-in's (an old or another sign-in)"};
  }
  const std::string fingerprint = pkce_s256_challenge(code.code.reveal());
  if (!sent_codes_.insert(fingerprint).second) {
    return Refused{
        "this code was sent to the identity platform already; sign in again with "
        "the same sign-in address and paste the new address"};
  }
  steps_.enter(SignInPhase::redeeming);
  ctx_.log.info(ctx_.account.name, ": redeeming the browser sign-in's code");
  HttpRequest request = authorization_code_request(ctx_.account, *endpoints_, code.code,
                                                   redirect_uri_, pkce_.verifier);
  request.priority = HttpPriority::urgent;  // a user is waiting, and the code is short-lived
  request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    request_.reset();
    on_token(std::move(response));
  });
  return Redeeming{};
}

void BrowserSignIn::on_token(HttpResponse response) {
  auto outcome = parse_token_response(response, ctx_.loop.clock().system());
  if (auto* tokens = std::get_if<TokenResponse>(&outcome)) {
    steps_.tokens(std::move(*tokens));
    return;
  }
  const auto& failure = std::get<AuthFailure>(outcome);
  // A failure in transit, or a code the platform refused (expired, reused, PKCE): the code is
  // never sent twice, so the user signs in again at the same address (docs/mqtt-api.md "Commands"
  // complete).
  if (failure.kind == AuthFailure::Kind::transient ||
      (failure.kind == AuthFailure::Kind::oauth && failure.error == "invalid_grant" &&
       !failure.policy)) {
    steps_.enter(SignInPhase::waiting_for_user);
    steps_.redemption_failed(failure);
    return;
  }
  steps_.refused(failure);
}

}  // namespace g2m
