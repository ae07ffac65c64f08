#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/logger.h"
#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/identity_context.h"
#include "identity/oauth.h"
#include "identity/sign_in_method.h"
#include "identity/token_set.h"
#include "loop/event_loop.h"

namespace g2m {

// Where one sign-in is. Every change goes through SignInDriver::enter(), which logs it at debug.
//   idle → resolving → requesting_code → waiting_for_user → fetching_user → idle   (device code)
//   idle → resolving → waiting_for_user ⇄ redeeming → fetching_user → idle        (browser)
// waiting_for_user may also move to the browser sign-in's waiting_for_user when the tenant's
// policy refuses the device code (docs/mqtt-api.md "Browser sign-in and tenant policy").
enum class SignInPhase {
  idle,
  resolving,
  requesting_code,
  waiting_for_user,
  redeeming,
  fetching_user
};
const char* to_string(SignInPhase phase);

// What a display shows while a sign-in waits for the user (docs/mqtt-api.md "Topics the agent
// publishes" auth/code).
struct SignInPrompt {
  SignInMethod method = SignInMethod::device_code;
  std::string user_code;  // device code only
  std::string verification_uri;
  std::optional<std::string> verification_uri_complete;
  std::optional<std::string> sign_in_url;  // browser only
  std::string message;
  SystemTime expires_at{};
  SteadyTime expires_at_steady{};
  std::optional<Seconds> interval;  // device code only
};

// How a sign-in ended by itself (a cancel comes from the owner and needs no event).
enum class SignInEnd { declined, code_expired, error, blocked };

// What the owner of a sign-in hears. Each call happens on the loop thread.
class SignInEvents {
 public:
  virtual ~SignInEvents() = default;
  // The sign-in waits for the user with this prompt (a new one after a switch of method).
  virtual void code_issued(const SignInPrompt& prompt) = 0;
  // slow_down raised the device code's polling interval.
  virtual void interval_changed(const SignInPrompt& prompt) = 0;
  // A request failed transiently; the sign-in retries by itself in `retry_in`.
  virtual void transient_error(const AuthFailure& failure, Millis retry_in) = 0;
  // The tenant's policy refused the device code; a browser sign-in follows at once.
  virtual void switching_to_browser(const AuthFailure& refusal) = 0;
  // A browser sign-in's code could not be redeemed; it keeps waiting for a new address.
  virtual void redemption_failed(const AuthFailure& failure) = 0;
  // Tokens arrived: store them now, before the access token is used (for the user's name).
  virtual void redeemed(const TokenSet& tokens) = 0;
  // The sign-in succeeded (the user's name looked up where the id_token had none).
  virtual void approved(TokenSet tokens) = 0;
  // The sign-in ended without tokens; `method` is the one that was under way (renew_code applies
  // to an expired device code only); `failure` is set for error and blocked.
  virtual void ended(SignInEnd end, SignInMethod method, const AuthFailure* failure) = 0;
};

// A sign-in needs nothing beyond the account's identity context.
using SignInContext = IdentityContext;

// What `complete` (or the terminal's pasted address) came to.
struct CompleteOutcome {
  bool ok = false;
  std::string error;  // a sentence for the error reply
};

// The steps a sign-in method reports back to the driver (implemented by SignInDriver).
class SignInSteps {
 public:
  virtual ~SignInSteps() = default;
  virtual void enter(SignInPhase phase) = 0;
  virtual void waiting(const SignInPrompt& prompt) = 0;
  virtual void interval_changed() = 0;
  virtual void transient(const AuthFailure& failure, Millis retry_in) = 0;
  virtual void tokens(TokenResponse tokens) = 0;
  virtual void refused(const AuthFailure& failure) = 0;  // terminal; a policy refusal too
  virtual void redemption_failed(const AuthFailure& failure) = 0;
  virtual void declined() = 0;
  virtual void expired() = 0;
};

// One way to get the user's consent: the device code or the browser sign-in.
class SignInStrategy {
 public:
  virtual ~SignInStrategy() = default;
  virtual SignInMethod method() const = 0;
  // Starts with the account's endpoints; reports through the driver's steps.
  virtual void begin(const Endpoints& endpoints) = 0;
  // Stops every timer and request; no further step is reported.
  virtual void stop() = 0;
  virtual const SignInPrompt* prompt() const = 0;
};

// The I/O driver of one account's sign-ins, around the pure protocol pieces (DeviceFlow, the
// PKCE helpers): resolves endpoints, runs one method at a time, switches to the browser sign-in
// on a policy refusal when allowed, looks up the user's name, and tells its owner.
class SignInDriver : private SignInSteps {
 public:
  SignInDriver(SignInContext context, SignInEvents& events);
  ~SignInDriver() override;
  SignInDriver(const SignInDriver&) = delete;
  SignInDriver& operator=(const SignInDriver&) = delete;

  // Starts a sign-in (the owner checks that none is under way). `fallback_to_browser`: a policy
  // refusal of the device code switches to the browser sign-in instead of ending as blocked.
  void start(SignInMethod method, bool fallback_to_browser);
  // Ends it silently (cancel, logout, shutdown): no event.
  void cancel();
  // The address a browser sign-in ended at. `done` runs once: at once when it is refused or
  // declined, else when the code's redemption has an outcome.
  void complete(const std::string& address, std::function<void(CompleteOutcome)> done);

  SignInPhase phase() const { return phase_; }
  bool active() const { return phase_ != SignInPhase::idle; }
  // The prompt while the sign-in waits for the user (also while a browser code is redeemed).
  const SignInPrompt* prompt() const;
  std::optional<SignInMethod> method() const;
  // While a failed request waits to be retried: how long until it is.
  std::optional<Millis> retry_in() const;
  // The browser sign-in is possible for this account (configuration and protocol allow it).
  bool browser_possible() const;

 private:
  void enter(SignInPhase phase) override;
  void waiting(const SignInPrompt& prompt) override;
  void interval_changed() override;
  void transient(const AuthFailure& failure, Millis retry_in) override;
  void tokens(TokenResponse tokens) override;
  void refused(const AuthFailure& failure) override;
  void redemption_failed(const AuthFailure& failure) override;
  void declined() override;
  void expired() override;

  void resolve();
  void begin_method(SignInMethod method);
  void fetch_user(TokenSet tokens);
  void finish(SignInEnd end, const AuthFailure* failure);
  void stop_io();

  SignInContext ctx_;
  SignInEvents& events_;
  SignInPhase phase_ = SignInPhase::idle;
  bool fallback_to_browser_ = false;
  SignInMethod requested_method_ = SignInMethod::device_code;
  std::unique_ptr<SignInStrategy> strategy_;
  // The method replaced last: a strategy may end the sign-in from inside its own callback, so
  // it is destroyed one replacement later, never while it runs.
  std::unique_ptr<SignInStrategy> retired_;
  std::optional<Endpoints> endpoints_;
  bool resolving_ = false;
  int resolve_failures_ = 0;
  Timer retry_timer_;            // endpoint discovery's retry
  SteadyTime retry_deadline_{};  // the method's own retry of a failed code request
  Timer expiry_timer_;
  std::uint64_t epoch_ = 0;  // bumps at every start/cancel: late answers of an old one are dropped
  // The endpoint resolver keeps a waiting discovery's callbacks, also of a driver that is gone
  // (an account a reload removed): they check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::uint64_t seed_;
  std::function<void(CompleteOutcome)> complete_done_;
};

}  // namespace g2m
