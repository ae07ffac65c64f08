#include "account/account.h"

#include <algorithm>
#include <cmath>

#include "common/time_format.h"
#include "graph/graph_fetch.h"
#include "graph/path_template.h"
#include "identity/endpoints.h"
#include "identity/identity_requests.h"
#include "identity/refresh_schedule.h"
#include "mqtt/request.h"

namespace g2m {

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

namespace {
constexpr Seconds kLoginRateWindow{10};
constexpr Millis kMaxAuthBackoff{300'000};

long long seconds_ceil(Millis d) {
  return std::max<long long>(0, (d.count() + 999) / 1000);
}

bool rejects_refresh_token(const std::string& error) {
  return error == "invalid_grant" || error == "interaction_required" || error == "consent_required";
}

std::string user_json(const std::optional<User>& user) {
  if (!user) return "null";
  return json::object(
      [&](json::Fields& f) { f.str("name", user->name).str("username", user->username); });
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// One Graph resource of the account: fetched right after sign-in, then every `every`; published
// when its body changes; retried after Retry-After or with backoff on failure (CONTRACT §6 Graph).
class Account::Resource {
 public:
  Resource(Account& owner, const ResourceConfig& config)
      : owner_(owner), config_(config), timer_(owner.ctx_.loop) {}

  const std::string& name() const { return config_.name; }
  std::string topic() const { return owner_.topic("graph/" + config_.name); }

  void start_now() {
    failures_ = 0;
    schedule(Millis(0));
  }
  // Starts polling if it is not already scheduled or under way (after a refresh that followed
  // a restart with an expired access token).
  void resume() {
    if (!timer_.active() && !in_flight_) start_now();
  }
  void stop() {
    published_ = false;  // the first fetch after a (new) sign-in is always published
    timer_.cancel();
    ++epoch_;
    in_flight_ = false;
  }
  std::optional<Seconds> retry_after_left() const {
    if (!retry_after_until_) return std::nullopt;
    const auto now = owner_.ctx_.loop.now();
    if (now >= *retry_after_until_) return std::nullopt;
    return std::chrono::ceil<Seconds>(*retry_after_until_ - now);
  }

  // A fetch now; `reply` (the refresh command's) gets the status, and the body is published
  // even when unchanged.
  void fetch(std::function<void(const GraphResult&)> reply = nullptr) {
    if (in_flight_ && !reply) return;
    in_flight_ = true;
    const std::uint64_t epoch = epoch_;
    const std::string path = expand_path_template(config_.path, owner_.ctx_.loop.clock().system());
    graph_fetch(owner_.ctx_.http, owner_.graph_base(), path, config_.max_pages, owner_.graph_auth(),
                [this, epoch, reply](GraphResult result) {
                  if (epoch != epoch_) return;  // tokens were lost meanwhile: drop it
                  in_flight_ = false;
                  on_result(result, reply != nullptr);
                  if (reply) reply(result);
                });
  }

 private:
  void schedule(Millis delay) {
    timer_.start_after(delay, [this] { fetch(); });
  }

  void on_result(const GraphResult& result, bool forced) {
    const Millis every = config_.every;
    if (result.success()) {
      failures_ = 0;
      retry_after_until_.reset();
      // The body last published is the retained value the session keeps for reconnections: no
      // second copy here. Equal bytes are equal JSON; otherwise compare as JSON.
      const std::string* previous = owner_.ctx_.mqtt.retained_value(topic());
      bool changed = previous == nullptr || previous->empty();
      if (!changed && *previous != result.body) {
        const auto before = json::parse(*previous);
        const auto now = json::parse(result.body);
        changed = !before || !now || !(*before == *now);
      }
      if (changed || forced || !published_) owner_.ctx_.mqtt.set_retained(topic(), result.body);
      published_ = true;
      // Up to 5 % jitter so many accounts with the same schedule spread out.
      const auto jitter = Millis(static_cast<long long>(
          static_cast<double>(std::chrono::duration_cast<Millis>(every).count()) * 0.05 *
          owner_.jitter_.next()));
      schedule(std::chrono::duration_cast<Millis>(every) - jitter);
      return;
    }
    Millis delay;
    if (result.status && (*result.status == 429 || *result.status == 503) && result.retry_after) {
      delay = std::max<Millis>(Seconds(1), *result.retry_after);
      retry_after_until_ = owner_.ctx_.loop.now() + delay;
    } else {
      const Millis cap = std::max<Millis>(every, Seconds(3600));
      delay = backoff_delay(failures_++, every, cap, owner_.jitter_.next());
    }
    owner_.emit("graph_error", [&](json::Fields& f) {
      f.str("resource", config_.name);
      f.opt_num("status", result.status ? std::optional<long long>(*result.status) : std::nullopt);
      f.str("code", result.code.empty() ? "invalid_json" : result.code);
      f.str("message", result.message);
      f.num("retry_in", seconds_ceil(delay));
    });
    owner_.ctx_.log.warn(owner_.name(), ": graph/", config_.name, ": ", result.code, " (",
                         result.message, "); retrying in ", seconds_ceil(delay), " s");
    schedule(delay);
  }

  Account& owner_;
  const ResourceConfig& config_;
  Timer timer_;
  int failures_ = 0;
  bool published_ = false;
  bool in_flight_ = false;
  std::uint64_t epoch_ = 0;
  std::optional<SteadyTime> retry_after_until_;
};

// ---------------------------------------------------------------------------------------------

Account::Account(const AccountConfig& config, AccountContext context)
    : config_(config),
      ctx_(std::move(context)),
      jitter_(ctx_.seed),
      sign_in_(SignInContext{ctx_.config, config_, ctx_.loop, ctx_.http, ctx_.endpoints, ctx_.log,
                             ctx_.seed ^ 0x5167'6e49'6e00'0000ULL},
               *this),
      refresh_timer_(ctx_.loop),
      persist_retry_timer_(ctx_.loop) {
  for (const auto& r : config_.resources)
    resources_.push_back(std::make_unique<Resource>(*this, r));
}

Account::~Account() = default;

std::string Account::topic(const std::string& leaf) const {
  return ctx_.base_topic + "/" + config_.name + "/" + leaf;
}

std::string Account::graph_base() const {
  const auto& id = ctx_.config.identity;
  return id.provider == Provider::oidc ? id.api.value_or("") : id.graph;
}

GraphAuth Account::graph_auth() {
  GraphAuth auth;
  auth.bearer = [this]() -> std::optional<std::string> {
    if (!tokens_) return std::nullopt;
    return tokens_->access_token.reveal();
  };
  auth.refresh = [this](std::function<void(bool)> done) { start_refresh(std::move(done)); };
  return auth;
}

TokenBinding Account::binding() const {
  return token_binding(ctx_.config, config_);
}

bool Account::has_resource(const std::string& name) const {
  return std::any_of(resources_.begin(), resources_.end(),
                     [&](const auto& r) { return r->name() == name; });
}

// --- start and stop ----------------------------------------------------------------------------

void Account::start() {
  since_ = ctx_.loop.clock().system();
  const auto loaded = ctx_.store.load(config_.name, binding());
  using Kind = TokenStore::LoadResult::Kind;
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  if (loaded.kind == Kind::ok && loaded.tokens) {
    seen_token_file_ = ctx_.store.modified(config_.name);
    adopt_tokens(*loaded.tokens, /*announce=*/false);
    return;
  }
  if (loaded.kind == Kind::corrupt || loaded.kind == Kind::unreadable) {
    ctx_.log.error(config_.name, ": ", loaded.message, "; the account counts as signed out");
  } else if (loaded.kind == Kind::other_binding) {
    ctx_.log.warn(config_.name, ": ", loaded.message, "; stored tokens ignored");
  }
  seen_token_file_ = ctx_.store.modified(config_.name);
  // Nothing stale from an earlier run survives (CONTRACT §1 "Always").
  clear_graph_topics();
  publish_state();
  if (config_.sign_in == SignIn::auto_) start_sign_in(default_method());
}

void Account::shutdown() {
  // Tokens that could not be stored yet get one more try: a rotated refresh token must not be
  // lost with the process.
  if (persist_pending_) persist_tokens();
  if (!sign_in_.active()) return;
  sign_in_.cancel();
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  reply_waiters(CommandResult::failure("the agent is shutting down"));
  if (forced_ && tokens_) {
    forced_ = false;
    set_state(AuthState::signed_in, std::nullopt);
  } else {
    set_state(AuthState::signed_out, SignOutReason::shutdown);
  }
  emit("signed_out", [](json::Fields& f) { f.str("reason", "shutdown"); });
}

// --- publishing ---------------------------------------------------------------------------------

void Account::emit(const std::string& event, const std::function<void(json::Fields&)>& fields) {
  OutgoingMessage m;
  m.topic = topic("events");
  m.payload = json::object([&](json::Fields& f) {
    f.str("event", event).str("at", format_utc(ctx_.loop.clock().system()));
    if (fields) fields(f);
  });
  ctx_.mqtt.send(std::move(m));
}

void Account::emit_auth_error(const AuthFailure& failure, std::optional<Millis> retry_in) {
  emit("auth_error", [&](json::Fields& f) {
    f.str("error", failure.error).str("description", failure.description);
    f.opt_num("retry_in",
              retry_in ? std::optional<long long>(seconds_ceil(*retry_in)) : std::nullopt);
    f.opt_str("policy", failure.policy ? std::optional<std::string>(to_string(*failure.policy))
                                       : std::nullopt);
  });
  if (retry_in) {
    ctx_.log.warn(config_.name, ": ", failure.error, ": ", failure.description, "; retrying in ",
                  seconds_ceil(*retry_in), " s");
  } else {
    ctx_.log.error(config_.name, ": ", failure.error, ": ", failure.description);
  }
}

std::string Account::code_json() const {
  const SignInPrompt* p = sign_in_.prompt();
  if (p == nullptr) return "null";
  const bool browser = p->method == SignInMethod::browser;
  return json::object([&](json::Fields& f) {
    f.str("method", to_string(p->method));
    if (browser) {
      f.null("user_code").null("verification_uri");
    } else {
      f.str("user_code", p->user_code).str("verification_uri", p->verification_uri);
    }
    f.opt_str("verification_uri_complete", p->verification_uri_complete);
    f.opt_str("sign_in_url", p->sign_in_url);
    f.str("message", p->message).str("expires_at", format_utc(p->expires_at));
    f.opt_num("interval",
              p->interval ? std::optional<long long>(p->interval->count()) : std::nullopt);
  });
}

std::string Account::state_json() const {
  return json::object([&](json::Fields& f) {
    f.str("state", to_string(state_)).str("since", format_utc(since_));
    const bool pending = state_ == AuthState::pending;
    const SignInPrompt* prompt = sign_in_.prompt();
    // While a forced re-sign-in is pending, user and scopes are still the old tokens'.
    f.raw("user", user_json(tokens_ ? tokens_->user : std::nullopt));
    if (state_ == AuthState::signed_in && tokens_) {
      f.str("expires_at", format_utc(tokens_->expires_at));
    } else if (pending && prompt != nullptr) {
      f.str("expires_at", format_utc(prompt->expires_at));
    } else {
      f.null("expires_at");
    }
    f.strings("scopes", tokens_ ? tokens_->scopes : std::vector<std::string>{});
    if (state_ == AuthState::signed_out && reason_) {
      f.str("reason", to_string(*reason_));
    } else {
      f.null("reason");
    }
    f.raw("code", code_json());
    if (state_ == AuthState::signed_out && state_error_) {
      f.raw("error", json::object([&](json::Fields& e) {
              e.str("error", state_error_->error).str("description", state_error_->description);
              e.opt_str("policy", state_error_->policy
                                      ? std::optional<std::string>(to_string(*state_error_->policy))
                                      : std::nullopt);
            }));
    } else {
      f.null("error");
    }
  });
}

void Account::publish_state() {
  // While a code is out, auth/state carries the code's expiry too (CONTRACT §1 auth/code).
  std::optional<SystemTime> expiry;
  const SignInPrompt* prompt = sign_in_.prompt();
  if (state_ == AuthState::pending && prompt != nullptr) expiry = prompt->expires_at;
  ctx_.mqtt.set_retained(topic("auth/state"), state_json(), expiry);
}

void Account::publish_code() {
  if (const SignInPrompt* prompt = sign_in_.prompt()) {
    ctx_.mqtt.set_retained(topic("auth/code"), code_json(), prompt->expires_at);
  } else {
    ctx_.mqtt.set_retained(topic("auth/code"), "");
  }
}

void Account::set_state(AuthState state, std::optional<SignOutReason> reason,
                        const AuthFailure* error) {
  if (state != state_) since_ = ctx_.loop.clock().system();
  state_ = state;
  reason_ = state == AuthState::signed_out ? reason : std::nullopt;
  state_error_.reset();
  if (reason_ && carries_error(*reason_) && error != nullptr) {
    state_error_ = StateError{error->error, error->description, error->policy};
  }
  publish_state();
}

void Account::clear_graph_topics() {
  for (auto& r : resources_) {
    r->stop();
    ctx_.mqtt.set_retained(r->topic(), "");
  }
}

// --- sign-in ------------------------------------------------------------------------------------

bool Account::signing_in() const {
  return sign_in_.active();
}

std::optional<SteadyTime> Account::code_expires_at() const {
  if (const SignInPrompt* prompt = sign_in_.prompt()) return prompt->expires_at_steady;
  return std::nullopt;
}

bool Account::login_would_start(bool force) const {
  return !sign_in_.active() && (state_ != AuthState::signed_in || force);
}

SignInMethod Account::default_method() const {
  switch (config_.sign_in_method) {
    case SignInMethodSetting::device_code:
      return SignInMethod::device_code;
    case SignInMethodSetting::browser:
      return SignInMethod::browser;
    case SignInMethodSetting::auto_:
      break;
  }
  return browser_preferred_ && sign_in_.browser_possible() ? SignInMethod::browser
                                                           : SignInMethod::device_code;
}

void Account::login(bool force, std::optional<SignInMethod> method, Reply reply) {
  const SignInPhase phase = sign_in_.phase();
  if (phase == SignInPhase::resolving || phase == SignInPhase::requesting_code) {
    if (auto wait = sign_in_.retry_in()) {
      // Waiting to retry a failed request: say when, at once (the first login was told so too).
      const long long in = std::max<long long>(1, seconds_ceil(*wait));
      reply(CommandResult::failure(
          "the identity platform could not be reached; retrying in " + std::to_string(in) + " s",
          in));
      return;
    }
    // The first login's device-code request is in flight: this one gets the same outcome.
    login_waiters_.push_back(std::move(reply));
    return;
  }
  if (sign_in_.active() || (state_ == AuthState::signed_in && !force)) {
    reply(CommandResult::success(state_json()));
    return;
  }
  const SignInMethod chosen = method.value_or(default_method());
  if (chosen == SignInMethod::browser && !sign_in_.browser_possible()) {
    reply(CommandResult::failure("the browser sign-in is not available for account `" +
                                 config_.name + "` (" +
                                 (ctx_.config.identity.protocol == Protocol::v1 &&
                                          ctx_.config.identity.provider == Provider::microsoft
                                      ? std::string("protocol v1 has only the device code")
                                      : std::string("it has no redirect_uri")) +
                                 ")"));
    return;
  }
  // Only device-code requests count against the 10 s limit: a browser sign-in sends nothing.
  if (chosen == SignInMethod::device_code) {
    const auto now = ctx_.loop.now();
    if (last_user_login_ && now - *last_user_login_ < kLoginRateWindow) {
      const auto wait = seconds_ceil(
          std::chrono::duration_cast<Millis>(kLoginRateWindow - (now - *last_user_login_)));
      reply(CommandResult::failure(
          "a sign-in was started less than 10 s ago; wait " + std::to_string(wait) + " s", wait));
      return;
    }
    last_user_login_ = now;
  }
  forced_ = state_ == AuthState::signed_in;
  login_waiters_.push_back(std::move(reply));
  start_sign_in(chosen);
}

void Account::start_sign_in(SignInMethod method) {
  const bool fallback = config_.sign_in_method == SignInMethodSetting::auto_;
  sign_in_.start(method, fallback);
}

void Account::complete(const std::string& address, Reply reply) {
  sign_in_.complete(address, [this, reply](CompleteOutcome outcome) {
    if (outcome.ok) {
      reply(CommandResult::success(state_json()));
    } else {
      reply(CommandResult::failure(outcome.error));
    }
  });
}

void Account::code_issued(const SignInPrompt& prompt) {
  publish_code();
  if (state_ != AuthState::pending) {
    set_state(AuthState::pending, std::nullopt);
  } else {
    publish_state();
  }
  emit("code_issued", [&](json::Fields& f) {
    f.str("method", to_string(prompt.method));
    if (prompt.method == SignInMethod::browser) {
      f.null("user_code").null("verification_uri");
    } else {
      f.str("user_code", prompt.user_code).str("verification_uri", prompt.verification_uri);
    }
    f.opt_str("verification_uri_complete", prompt.verification_uri_complete);
    f.opt_str("sign_in_url", prompt.sign_in_url);
    f.str("expires_at", format_utc(prompt.expires_at));
  });
  reply_waiters(CommandResult::success(state_json()));
}

void Account::interval_changed(const SignInPrompt& prompt) {
  ctx_.log.info(config_.name, ": slow_down: polling every ",
                prompt.interval ? prompt.interval->count() : 0, " s");
  publish_code();
  publish_state();
}

void Account::transient_error(const AuthFailure& failure, Millis retry_in) {
  emit_auth_error(failure, retry_in);
  if (sign_in_.prompt() == nullptr) {
    // No code yet: the logins waiting for one learn when the agent tries again.
    reply_waiters(CommandResult::failure("the identity platform could not be reached (" +
                                             failure.error + "); retrying in " +
                                             std::to_string(seconds_ceil(retry_in)) + " s",
                                         seconds_ceil(retry_in)));
  }
}

void Account::switching_to_browser(const AuthFailure& refusal) {
  browser_preferred_ = true;
  emit_auth_error(refusal, std::nullopt);
}

void Account::redemption_failed(const AuthFailure& failure) {
  emit_auth_error(failure, std::nullopt);
}

void Account::redeemed(const TokenSet& tokens) {
  // The code is spent: displays stop showing it while the user's name is looked up.
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  if (tokens.user) return;  // adopted at once, and stored there
  // The access token is about to be used for the name: the tokens are on disk first.
  const auto saved = ctx_.store.save(config_.name, binding(), tokens);
  if (!saved.ok) ctx_.log.warn(config_.name, ": ", saved.message);
}

void Account::approved(TokenSet tokens) {
  forced_ = false;
  publish_code();  // clears auth/code
  adopt_tokens(std::move(tokens), /*announce=*/true);
}

void Account::ended(SignInEnd end, const AuthFailure* failure) {
  switch (end) {
    case SignInEnd::declined:
      reply_waiters(CommandResult::failure("the sign-in was declined"));
      end_sign_in(SignOutReason::declined);
      return;
    case SignInEnd::code_expired: {
      const bool renewing = config_.renew_code && !browser_preferred_ &&
                            config_.sign_in_method != SignInMethodSetting::browser;
      end_sign_in(SignOutReason::code_expired, renewing);
      return;
    }
    case SignInEnd::error:
    case SignInEnd::blocked:
      break;
  }
  if (failure != nullptr) {
    emit_auth_error(*failure, std::nullopt);
    if (failure->policy && config_.sign_in_method == SignInMethodSetting::auto_) {
      browser_preferred_ = true;
    }
  }
  reply_waiters(CommandResult::failure(failure ? "sign-in failed: " + failure->error + ": " +
                                                     failure->description
                                               : "sign-in failed"));
  end_sign_in(end == SignInEnd::blocked ? SignOutReason::blocked : SignOutReason::error,
              /*renewing=*/false, failure);
}

void Account::reply_waiters(const CommandResult& result) {
  auto waiters = std::move(login_waiters_);
  login_waiters_.clear();
  for (auto& w : waiters) w(result);
}

void Account::end_sign_in(SignOutReason reason, bool renewing, const AuthFailure* failure) {
  ctx_.mqtt.set_retained(topic("auth/code"), "");  // an empty retained payload clears displays
  if (reason == SignOutReason::declined) emit("declined", nullptr);
  if (reason == SignOutReason::cancelled) emit("cancelled", nullptr);
  if (reason == SignOutReason::code_expired) {
    emit("code_expired", [&](json::Fields& f) { f.boolean("renewing", renewing); });
  }
  if (renewing) {
    // auth/state stays pending with code and expires_at null until the new code is out.
    start_sign_in(SignInMethod::device_code);
    publish_state();
    return;
  }
  if (forced_ && tokens_) {
    // A failed forced re-sign-in returns to the old tokens without a signed_out.
    forced_ = false;
    set_state(AuthState::signed_in, std::nullopt);
    return;
  }
  forced_ = false;
  set_state(AuthState::signed_out, reason, failure);
  emit("signed_out", [&](json::Fields& f) { f.str("reason", to_string(reason)); });
  ctx_.log.info(config_.name, ": signed out (", to_string(reason), ")");
}

// --- tokens -------------------------------------------------------------------------------------

void Account::adopt_tokens(TokenSet tokens, bool announce) {
  const bool was_signed_in = tokens_.has_value() && state_ == AuthState::signed_in;
  tokens_ = std::move(tokens);
  if (announce) persist_tokens();  // on disk before the new access token is used
  ++token_epoch_;
  for (auto& r : resources_) r->stop();
  set_state(AuthState::signed_in, std::nullopt);
  if (announce) {
    emit("signed_in", [&](json::Fields& f) {
      f.raw("user", user_json(tokens_->user));
      f.strings("scopes", tokens_->scopes);
    });
    ctx_.log.info(config_.name, ": signed in",
                  tokens_->user ? " as " + tokens_->user->username : "");
  } else if (!was_signed_in) {
    ctx_.log.info(config_.name, ": signed in with stored tokens");
  }
  const auto now = ctx_.loop.clock().system();
  if (tokens_->expires_at <= now) {
    // A restart with an expired access token refreshes at once, without any user action.
    start_refresh(nullptr);  // resources start when it succeeds
  } else {
    schedule_refresh();
    for (auto& r : resources_) r->start_now();
  }
}

bool Account::persist_tokens() {
  if (!tokens_) return true;
  const auto result = ctx_.store.save(config_.name, binding(), *tokens_);
  if (result.ok) {
    persist_pending_ = false;
    seen_token_file_ = ctx_.store.modified(config_.name);
    return true;
  }
  // Keep the tokens in memory, report, and try again: nothing is lost while the disk is sick.
  persist_pending_ = true;
  AuthFailure f;
  f.error = "storage_error";
  f.description = result.message;
  const Millis retry = Seconds(5);
  emit_auth_error(f, retry);
  persist_retry_timer_.start_after(retry, [this] {
    if (persist_pending_) persist_tokens();
  });
  return false;
}

void Account::schedule_refresh() {
  if (!tokens_) return;
  const SystemTime when = refresh_time(tokens_->obtained_at, tokens_->expires_at, ctx_.index,
                                       ctx_.account_count, ctx_.refresh_offset);
  const auto delay = std::max<Millis>(
      Millis(0), std::chrono::duration_cast<Millis>(when - ctx_.loop.clock().system()));
  refresh_timer_.start_after(delay, [this] { start_refresh(nullptr); });
}

void Account::start_refresh(std::function<void(bool)> done) {
  if (done) refresh_waiters_.push_back(std::move(done));
  if (refresh_request_ || refresh_resolving_) return;  // a refresh is under way: wait for it
  if (!tokens_ || tokens_->refresh_token.empty()) {
    finish_refresh(false);
    return;
  }
  refresh_timer_.cancel();
  if (!endpoints_) {
    refresh_resolving_ = true;
    ctx_.endpoints.resolve(config_, [this](EndpointResolver::Result result) {
      refresh_resolving_ = false;
      if (auto* failure = std::get_if<AuthFailure>(&result)) {
        // No endpoints yet: keep the tokens and try again later.
        AuthFailure f = *failure;
        f.kind = AuthFailure::Kind::transient;
        on_refresh_failure(f);
        return;
      }
      endpoints_ = std::get<Endpoints>(result);
      start_refresh(nullptr);
    });
    return;
  }
  HttpRequest request = refresh_request(ctx_.config, config_, *endpoints_, tokens_->refresh_token);
  ctx_.log.debug(config_.name, ": refreshing the access token");
  refresh_request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    refresh_request_.reset();
    on_refresh(std::move(response));
  });
}

void Account::on_refresh(HttpResponse response) {
  if (!tokens_) {
    finish_refresh(false);
    return;
  }
  auto outcome = parse_token_response(response);
  if (auto* t = std::get_if<TokenResponse>(&outcome)) {
    refresh_failures_ = 0;
    TokenSet next = make_token_set(std::move(*t), ctx_.loop.clock().system(), &*tokens_);
    tokens_ = std::move(next);
    persist_tokens();  // the rotated refresh token is on disk before the access token is used
    publish_state();
    emit("token_refreshed",
         [&](json::Fields& f) { f.str("expires_at", format_utc(tokens_->expires_at)); });
    ctx_.log.info(config_.name, ": access token refreshed, expires at ",
                  format_utc(tokens_->expires_at));
    schedule_refresh();
    for (auto& r : resources_) r->resume();
    finish_refresh(true);
    return;
  }
  on_refresh_failure(std::get<AuthFailure>(outcome));
}

void Account::on_refresh_failure(const AuthFailure& failure) {
  if (failure.kind == AuthFailure::Kind::transient) {
    const Millis delay = std::max<Millis>(
        backoff_delay(refresh_failures_++, Seconds(5), kMaxAuthBackoff, jitter_.next()),
        failure.retry_after.value_or(Seconds(0)));
    emit_auth_error(failure, delay);
    refresh_timer_.start_after(delay, [this] { start_refresh(nullptr); });
    finish_refresh(false);
    return;
  }
  emit_auth_error(failure, std::nullopt);
  SignOutReason reason = SignOutReason::error;
  if (failure.policy) {
    // AADSTS530036 and kin: tokens a device-code sign-in produced are refused for good.
    reason = SignOutReason::blocked;
    if (config_.sign_in_method == SignInMethodSetting::auto_) browser_preferred_ = true;
  } else if (failure.kind == AuthFailure::Kind::oauth && rejects_refresh_token(failure.error)) {
    reason = SignOutReason::refresh_rejected;
  }
  lose_tokens(reason, &failure);
  finish_refresh(false);
}

void Account::finish_refresh(bool ok) {
  auto waiters = std::move(refresh_waiters_);
  refresh_waiters_.clear();
  for (auto& w : waiters) w(ok);
}

// Drops the tokens from memory and disk and stops everything that used them.
void Account::forget_tokens() {
  refresh_timer_.cancel();
  persist_retry_timer_.cancel();
  persist_pending_ = false;
  if (refresh_request_) ctx_.http.cancel(*refresh_request_);
  refresh_request_.reset();
  refresh_resolving_ = false;
  if (tokens_) {
    tokens_->access_token.clear();
    tokens_->refresh_token.clear();
  }
  tokens_.reset();
  ++token_epoch_;
  const auto before = ctx_.store.modified(config_.name);
  last_remove_ = ctx_.store.remove(config_.name);
  if (!last_remove_.ok) {
    ctx_.log.error(config_.name, ": ", last_remove_.message);
    undeletable_token_file_ = before;
  }
  seen_token_file_.reset();
  clear_graph_topics();
}

void Account::lose_tokens(SignOutReason reason, const AuthFailure* failure) {
  forget_tokens();
  if (sign_in_.active()) {
    // A sign-in was under way (forced): it goes on, now as a plain one.
    forced_ = false;
    set_state(AuthState::pending, std::nullopt);
    return;
  }
  set_state(AuthState::signed_out, reason, failure);
  emit("signed_out", [&](json::Fields& f) { f.str("reason", to_string(reason)); });
  ctx_.log.warn(config_.name, ": signed out (", to_string(reason), ")");
  const bool may_sign_in_again =
      reason == SignOutReason::refresh_rejected ||
      (reason == SignOutReason::blocked && default_method() == SignInMethod::browser);
  if (may_sign_in_again && config_.sign_in == SignIn::auto_) start_sign_in(default_method());
}

void Account::check_token_file() {
  if (tokens_ || sign_in_.active()) return;
  const auto modified = ctx_.store.modified(config_.name);
  if (!modified || modified == seen_token_file_) return;
  if (undeletable_token_file_ && modified == undeletable_token_file_) return;
  seen_token_file_ = modified;
  const auto loaded = ctx_.store.load(config_.name, binding());
  if (loaded.kind != TokenStore::LoadResult::Kind::ok || !loaded.tokens) {
    if (loaded.kind != TokenStore::LoadResult::Kind::none) {
      ctx_.log.warn(config_.name, ": new token file not used: ", loaded.message);
    }
    return;
  }
  ctx_.log.info(config_.name, ": picked up tokens stored by `graph2mqtt login`");
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  adopt_tokens(*loaded.tokens, /*announce=*/false);
  emit("signed_in", [&](json::Fields& f) {
    f.raw("user", user_json(tokens_->user));
    f.strings("scopes", tokens_->scopes);
  });
}

// --- other commands -----------------------------------------------------------------------------

void Account::logout(Reply reply) {
  if (sign_in_.active()) {
    sign_in_.cancel();
    reply_waiters(CommandResult::failure("the sign-in was ended by a logout"));
  }
  forced_ = false;
  forget_tokens();
  finish_refresh(false);  // after the tokens are gone: a waiting refresh learns it is signed out
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  set_state(AuthState::signed_out, SignOutReason::logout);
  emit("signed_out", [](json::Fields& f) { f.str("reason", "logout"); });
  ctx_.log.info(config_.name, ": logged out");
  if (!last_remove_.ok) {
    reply(
        CommandResult::failure("the tokens were dropped from memory, but the token file could "
                               "not be deleted: " +
                               last_remove_.message));
    return;
  }
  reply(CommandResult::success(state_json()));
}

void Account::cancel(Reply reply) {
  if (!sign_in_.active()) {
    reply(CommandResult::failure("no sign-in is pending for account `" + config_.name + "`"));
    return;
  }
  if (sign_in_.phase() == SignInPhase::fetching_user) {
    reply(CommandResult::failure("the user has already approved the sign-in of account `" +
                                 config_.name + "`; it completes in a moment (logout signs out)"));
    return;
  }
  sign_in_.cancel();
  reply_waiters(CommandResult::failure("the sign-in was cancelled"));
  end_sign_in(SignOutReason::cancelled);
  reply(CommandResult::success(state_json()));
}

void Account::refresh(const std::optional<std::string>& resource, Reply reply) {
  if (!resource) {
    if (!tokens_) {
      reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
      return;
    }
    // One redemption at a time: a refresh under way is joined (and not counted); at most one
    // refresh-started redemption per 10 s (CONTRACT §2 Limits), so a flood of requests cannot
    // trip Microsoft's loop detection (AADSTS50196) and lose the tokens.
    const bool under_way = refresh_request_.has_value() || refresh_resolving_;
    if (!under_way) {
      const auto now = ctx_.loop.now();
      if (last_token_refresh_command_ && now - *last_token_refresh_command_ < kLoginRateWindow) {
        const auto wait =
            std::max<long long>(1, seconds_ceil(std::chrono::duration_cast<Millis>(
                                       kLoginRateWindow - (now - *last_token_refresh_command_))));
        reply(CommandResult::failure(
            "a refresh was started less than 10 s ago; wait " + std::to_string(wait) + " s", wait));
        return;
      }
      last_token_refresh_command_ = now;
    }
    start_refresh([this, reply](bool ok) {
      if (ok) {
        reply(CommandResult::success(state_json()));
      } else if (tokens_) {
        const long long retry = refresh_timer_.active()
                                    ? seconds_ceil(std::chrono::duration_cast<Millis>(
                                          refresh_timer_.deadline() - ctx_.loop.clock().steady()))
                                    : 5;
        reply(CommandResult::failure(
            "the refresh failed; the agent retries in " + std::to_string(retry) + " s", retry));
      } else {
        reply(
            CommandResult::failure("the account is signed out (the refresh was refused, or a "
                                   "logout came first)"));
      }
    });
    return;
  }
  Resource* target = nullptr;
  for (auto& r : resources_) {
    if (r->name() == *resource) target = r.get();
  }
  if (target == nullptr) {
    reply(CommandResult::failure("account `" + config_.name + "` has no resource `" + *resource +
                                 "`"));
    return;
  }
  if (!tokens_) {
    reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
    return;
  }
  if (auto left = target->retry_after_left()) {
    reply(CommandResult::failure(
        "Graph asked to wait (Retry-After) before fetching `" + *resource + "` again",
        left->count()));
    return;
  }
  if (auto wait = graph_rate_limited(last_refresh_command_)) {
    reply(CommandResult::failure("at most one resource refresh per second per account", *wait));
    return;
  }
  target->fetch([reply, name = *resource](const GraphResult& result) {
    if (!result.status) {
      reply(CommandResult::failure("fetching `" + name + "` failed: " + result.code + ": " +
                                   result.message));
      return;
    }
    reply(CommandResult::success(json::object(
        [&](json::Fields& f) { f.str("resource", name).num("status", *result.status); })));
  });
}

std::optional<long long> Account::graph_rate_limited(std::optional<SteadyTime>& last) {
  // CONTRACT §2: at most one Graph request per second per command kind, counted from the
  // receipt of requests that reached Graph.
  const auto now = ctx_.loop.now();
  if (last && now - *last < Seconds(1)) return 1;
  last = now;
  return std::nullopt;
}

void Account::graph_get(const std::string& path, Reply reply) {
  if (auto bad = check_graph_path(path)) {
    reply(CommandResult::failure(*bad));
    return;
  }
  const bool allowed = std::any_of(config_.graph_allow.begin(), config_.graph_allow.end(),
                                   [&](const std::string& p) { return path_allowed_by(path, p); });
  if (!allowed) {
    reply(CommandResult::failure("`" + path + "` is not allowed by graph_allow of account `" +
                                 config_.name + "`"));
    return;
  }
  if (!tokens_) {
    reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
    return;
  }
  if (auto wait = graph_rate_limited(last_graph_command_)) {
    reply(CommandResult::failure("at most one `graph` request per second per account", *wait));
    return;
  }
  graph_fetch(ctx_.http, graph_base(), path, 1, graph_auth(), [reply](GraphResult result) {
    if (!result.status) {
      reply(CommandResult::failure("the Graph request failed: " + result.code + ": " +
                                   result.message));
      return;
    }
    const std::string body = result.body_is_json ? result.body : "null";
    reply(CommandResult::success(json::object([&](json::Fields& f) {
      f.num("status", *result.status).raw("body", body.empty() ? "null" : body);
    })));
  });
}

}  // namespace g2m
