#include "identity/sign_in.h"

#include "common/backoff.h"
#include "graph/graph_fetch.h"
#include "identity/browser_sign_in.h"
#include "identity/device_code_sign_in.h"
#include "identity/identity_requests.h"
#include "json/json.h"

namespace g2m {

namespace {
constexpr Millis kMaxBackoff{300'000};
}

const char* to_string(SignInPhase phase) {
  switch (phase) {
    case SignInPhase::idle:
      return "idle";
    case SignInPhase::resolving:
      return "resolving";
    case SignInPhase::requesting_code:
      return "requesting_code";
    case SignInPhase::waiting_for_user:
      return "waiting_for_user";
    case SignInPhase::redeeming:
      return "redeeming";
    case SignInPhase::fetching_user:
      return "fetching_user";
  }
  return "?";
}

SignInDriver::SignInDriver(SignInContext context, SignInEvents& events)
    : ctx_(context),
      events_(events),
      retry_timer_(context.loop),
      expiry_timer_(context.loop),
      seed_(context.seed) {}

SignInDriver::~SignInDriver() {
  stop_io();
}

void SignInDriver::enter(SignInPhase phase) {
  if (phase == phase_) return;
  ctx_.log.debug(ctx_.account.name, ": sign-in: ", to_string(phase_), " -> ", to_string(phase));
  phase_ = phase;
}

bool SignInDriver::browser_possible() const {
  if (ctx_.account.platform.v1()) return false;
  return ctx_.account.redirect_uri.has_value();
}

const SignInPrompt* SignInDriver::prompt() const {
  if (phase_ != SignInPhase::waiting_for_user && phase_ != SignInPhase::redeeming) return nullptr;
  return strategy_ ? strategy_->prompt() : nullptr;
}

std::optional<SignInMethod> SignInDriver::method() const {
  if (!active()) return std::nullopt;
  return strategy_ ? strategy_->method() : requested_method_;
}

std::optional<Millis> SignInDriver::retry_in() const {
  if (!retry_timer_.active() &&
      !(strategy_ && phase_ == SignInPhase::requesting_code && retry_deadline_ > ctx_.loop.now())) {
    return std::nullopt;
  }
  const SteadyTime deadline = retry_timer_.active() ? retry_timer_.deadline() : retry_deadline_;
  return std::chrono::duration_cast<Millis>(deadline - ctx_.loop.now());
}

void SignInDriver::start(SignInMethod method, bool fallback_to_browser) {
  stop_io();
  ++epoch_;
  requested_method_ = method;
  fallback_to_browser_ = fallback_to_browser && method == SignInMethod::device_code;
  resolve_failures_ = 0;
  retry_deadline_ = {};
  retired_ = std::move(strategy_);
  enter(SignInPhase::resolving);
  resolve();
}

void SignInDriver::resolve() {
  resolving_ = true;
  const std::uint64_t epoch = epoch_;
  ctx_.endpoints.resolve(
      ctx_.account, ctx_.loop.clock(),
      [this, epoch, alive = std::weak_ptr<bool>(alive_)](EndpointResolver::Result result) {
        if (alive.expired()) return;                 // the driver is gone
        if (epoch != epoch_ || !resolving_) return;  // cancelled meanwhile
        resolving_ = false;
        if (auto* failure = std::get_if<AuthFailure>(&result)) {
          if (failure->kind == AuthFailure::Kind::transient) {
            Jitter jitter(seed_ + static_cast<std::uint64_t>(resolve_failures_));
            const Millis delay = retry_delay(resolve_failures_, Seconds(5), kMaxBackoff, jitter,
                                             failure->retry_after);
            retry_timer_.start_after(delay, [this] { resolve(); });
            events_.transient_error(*failure, delay);
            return;
          }
          finish(SignInEnd::error, failure);
          return;
        }
        endpoints_ = std::get<Endpoints>(result);
        begin_method(requested_method_);
      });
}

void SignInDriver::begin_method(SignInMethod method) {
  if (strategy_) strategy_->stop();
  retired_ = std::move(strategy_);
  seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
  if (method == SignInMethod::browser) {
    strategy_ = std::make_unique<BrowserSignIn>(ctx_, static_cast<SignInSteps&>(*this));
  } else {
    strategy_ = std::make_unique<DeviceCodeSignIn>(ctx_, static_cast<SignInSteps&>(*this), seed_);
  }
  strategy_->begin(*endpoints_);
}

void SignInDriver::waiting(const SignInPrompt& prompt) {
  enter(SignInPhase::waiting_for_user);
  retry_deadline_ = {};
  const std::uint64_t epoch = epoch_;
  expiry_timer_.start_at(prompt.expires_at_steady, [this, epoch] {
    if (epoch != epoch_) return;
    ctx_.log.info(ctx_.account.name, ": the sign-in expired unused");
    expired();
  });
  events_.code_issued(prompt);
}

void SignInDriver::interval_changed() {
  if (const auto* p = prompt()) events_.interval_changed(*p);
}

void SignInDriver::transient(const AuthFailure& failure, Millis retry_in) {
  if (phase_ == SignInPhase::requesting_code) retry_deadline_ = ctx_.loop.now() + retry_in;
  events_.transient_error(failure, retry_in);
}

void SignInDriver::tokens(TokenResponse response) {
  expiry_timer_.cancel();
  if (strategy_) strategy_->stop();
  TokenSet tokens = make_token_set(std::move(response), ctx_.loop.clock().system());
  events_.redeemed(tokens);
  if (tokens.user) {
    auto done = std::move(complete_done_);
    complete_done_ = nullptr;
    enter(SignInPhase::idle);
    events_.approved(std::move(tokens));
    if (done) done(CompleteOutcome{true, {}});
    return;
  }
  fetch_user(std::move(tokens));
}

void SignInDriver::fetch_user(TokenSet tokens) {
  // No name in an id_token: ask Graph's /me (or the provider's userinfo endpoint) before
  // announcing the sign-in, so signed_in carries the user (docs/mqtt-api.md "Topics the agent
  // publishes" auth/state U).
  enter(SignInPhase::fetching_user);
  const bool oidc = ctx_.account.platform.provider == Provider::oidc;
  auto pending = std::make_shared<TokenSet>(std::move(tokens));
  const std::uint64_t epoch = epoch_;
  auto finish_approved = [this, pending] {
    auto done = std::move(complete_done_);
    complete_done_ = nullptr;
    enter(SignInPhase::idle);
    events_.approved(std::move(*pending));
    if (done) done(CompleteOutcome{true, {}});
  };
  if (oidc && !(endpoints_ && endpoints_->userinfo)) {
    finish_approved();
    return;
  }
  GraphAuth auth;
  auth.bearer = [pending]() -> std::optional<std::string> {
    return pending->access_token.reveal();
  };
  const std::string base = oidc ? *endpoints_->userinfo : ctx_.account.platform.graph;
  graph_fetch(
      ctx_.http, ctx_.loop.clock(), GraphGet{base, oidc ? "" : "/me", 1, kDefaultMaxGraphBytes},
      auth, [this, pending, epoch, oidc, finish_approved](GraphResult result) {
        if (epoch != epoch_ || phase_ != SignInPhase::fetching_user) return;
        if (result.success()) {
          if (auto doc = json::parse_object(result.body)) {
            User user;
            user.name = json::get_string(*doc, oidc ? "name" : "displayName").value_or("");
            user.username =
                json::get_string(*doc, oidc ? "preferred_username" : "userPrincipalName")
                    .value_or(json::get_string(*doc, oidc ? "email" : "mail").value_or(""));
            if (!user.name.empty() || !user.username.empty()) pending->user = user;
          }
        } else {
          ctx_.log.warn(ctx_.account.name, ": could not read the user's name: ", result.code);
        }
        finish_approved();
      });
}

void SignInDriver::refused(const AuthFailure& failure) {
  const bool device_code = strategy_ && strategy_->method() == SignInMethod::device_code;
  if (failure.policy && device_code && fallback_to_browser_ && browser_possible()) {
    // docs/mqtt-api.md "Browser sign-in and tenant policy": under auto, the browser sign-in starts
    // at once instead.
    ctx_.log.warn(ctx_.account.name, ": ", failure.description,
                  "; starting a browser sign-in instead");
    expiry_timer_.cancel();
    events_.switching_to_browser(failure);
    fallback_to_browser_ = false;
    begin_method(SignInMethod::browser);
    return;
  }
  finish(failure.policy ? SignInEnd::blocked : SignInEnd::error, &failure);
}

void SignInDriver::redemption_failed(const AuthFailure& failure) {
  auto done = std::move(complete_done_);
  complete_done_ = nullptr;
  events_.redemption_failed(failure);
  if (done) {
    done(CompleteOutcome{false, "the sign-in code could not be redeemed (" + failure.error + ": " +
                                    failure.description +
                                    "); sign in again at the same sign-in address and send the "
                                    "new address"});
  }
}

void SignInDriver::declined() {
  finish(SignInEnd::declined, nullptr);
}

void SignInDriver::expired() {
  finish(SignInEnd::code_expired, nullptr);
}

void SignInDriver::complete(const std::string& address, std::function<void(CompleteOutcome)> done) {
  auto* browser = dynamic_cast<BrowserSignIn*>(strategy_.get());
  if (browser == nullptr || (phase_ != SignInPhase::waiting_for_user)) {
    const bool redeeming = browser != nullptr && phase_ == SignInPhase::redeeming;
    done(CompleteOutcome{false, redeeming ? "a sign-in code is being redeemed already; wait for "
                                            "its answer"
                                          : "no browser sign-in is pending for account `" +
                                                ctx_.account.name + "`"});
    return;
  }
  auto check = browser->complete(address);
  if (auto* refused = std::get_if<BrowserSignIn::Refused>(&check)) {
    done(CompleteOutcome{false, refused->why});
    return;
  }
  if (auto* declined = std::get_if<BrowserSignIn::Declined>(&check)) {
    std::string why =
        "the user declined the sign-in (" + declined->error.error +
        (declined->error.description.empty() ? "" : ": " + declined->error.description) + ")";
    done(CompleteOutcome{false, std::move(why)});
    finish(SignInEnd::declined, nullptr);
    return;
  }
  complete_done_ = std::move(done);
}

void SignInDriver::finish(SignInEnd end, const AuthFailure* failure) {
  const SignInMethod method = this->method().value_or(requested_method_);
  auto done = std::move(complete_done_);
  complete_done_ = nullptr;
  stop_io();
  ++epoch_;
  enter(SignInPhase::idle);
  if (done) {
    done(CompleteOutcome{false,
                         failure ? "sign-in failed: " + failure->error + ": " + failure->description
                                 : "the sign-in ended"});
  }
  events_.ended(end, method, failure);
}

void SignInDriver::cancel() {
  stop_io();
  ++epoch_;
  complete_done_ = nullptr;
  retired_ = std::move(strategy_);
  enter(SignInPhase::idle);
}

void SignInDriver::stop_io() {
  resolving_ = false;
  retry_timer_.cancel();
  expiry_timer_.cancel();
  if (strategy_) strategy_->stop();
}

}  // namespace g2m
