#include "account/account.h"

#include <algorithm>
#include <cmath>

#include "common/time_format.h"
#include "graph/graph_fetch.h"
#include "graph/graph_path.h"
#include "identity/endpoints.h"
#include "identity/identity_requests.h"

namespace g2m {

namespace {
constexpr Seconds kLoginRateWindow{10};

long long seconds_ceil(Millis d) {
  return std::max<long long>(0, (d.count() + 999) / 1000);
}

bool rejects_refresh_token(const std::string& error) {
  return error == "invalid_grant" || error == "interaction_required" || error == "consent_required";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Account::Account(const AccountConfig& config, AccountContext context)
    : config_(config),
      ctx_(std::move(context)),
      topics_(ctx_.base_topic, config_.name),
      jitter_(ctx_.seed),
      sign_in_(SignInContext{identity_options(ctx_.config, config_), ctx_.loop, ctx_.http,
                             ctx_.endpoints, ctx_.log, ctx_.seed ^ 0x5167'6e49'6e00'0000ULL},
               *this),
      keeper_(TokenKeeperContext{{identity_options(ctx_.config, config_), ctx_.loop, ctx_.http,
                                  ctx_.endpoints, ctx_.log, ctx_.seed ^ 0x7e4b'3e90'0000'0000ULL},
                                 ctx_.store,
                                 ctx_.index,
                                 ctx_.account_count,
                                 ctx_.refresh_offset},
              *this) {
  for (const auto& r : config_.resources) {
    resources_.push_back(std::make_unique<ResourcePoller>(
        ctx_.loop, ctx_.http, PolledResource{r.name, r.path, r.every, r.max_pages}, graph_base(),
        graph_auth(), jitter_, [this] { return ctx_.mqtt.max_payload_size(); },
        static_cast<ResourceSink&>(*this)));
  }
}

Account::~Account() = default;

const std::string* Account::published_body(const std::string& resource) const {
  return ctx_.mqtt.retained_value(topics_.graph(resource));
}

void Account::publish_body(const std::string& resource, const std::string& body) {
  ctx_.mqtt.set_retained(topics_.graph(resource), body);
}

void Account::graph_error(const std::string& resource, const GraphResult& result, Millis retry_in) {
  emit("graph_error", [&](json::Fields& f) {
    f.str("resource", resource);
    f.opt_num("status", result.status ? std::optional<long long>(*result.status) : std::nullopt);
    f.str("code", result.code);
    f.str("message", result.message);
    f.num("retry_in", seconds_ceil(retry_in));
  });
  ctx_.log.warn(config_.name, ": graph/", resource, ": ", result.code, " (", result.message,
                "); retrying in ", seconds_ceil(retry_in), " s");
}

std::string Account::graph_base() const {
  const auto& id = ctx_.config.identity;
  return id.provider == Provider::oidc ? id.api.value_or("") : id.graph;
}

GraphAuth Account::graph_auth() {
  return keeper_.graph_auth();
}

TokenBinding Account::binding() const {
  return keeper_.binding();
}

bool Account::has_resource(const std::string& name) const {
  return std::any_of(resources_.begin(), resources_.end(),
                     [&](const auto& r) { return r->name() == name; });
}

// --- start and stop ----------------------------------------------------------------------------

void Account::start() {
  start(std::nullopt);
}

void Account::store_before_exit(Millis wait) {
  keeper_.flush_waiting(wait);
}

std::optional<TokenSet> Account::take_unsaved_tokens() {
  return keeper_.take_unsaved();
}

void Account::start(std::optional<TokenSet> unsaved) {
  since_ = ctx_.loop.clock().system();
  if (unsaved) {
    ctx_.log.warn(config_.name, ": using the tokens the restarted account could not store yet");
    ctx_.mqtt.set_retained(topics_.auth_code(), "");
    adopt_tokens(std::move(*unsaved), /*announce=*/false, /*store=*/true);
    return;
  }
  auto loaded = keeper_.load();
  using Kind = TokenStore::LoadResult::Kind;
  ctx_.mqtt.set_retained(topics_.auth_code(), "");
  if (loaded.kind == Kind::ok && loaded.tokens) {
    adopt_tokens(std::move(*loaded.tokens), /*announce=*/false, /*store=*/false);
    return;
  }
  if (loaded.kind == Kind::corrupt || loaded.kind == Kind::unreadable) {
    ctx_.log.error(config_.name, ": ", loaded.message, "; the account counts as signed out");
  } else if (loaded.kind == Kind::other_binding) {
    ctx_.log.warn(config_.name, ": ", loaded.message, "; stored tokens ignored");
  }
  // Nothing stale from an earlier run survives (docs/mqtt-api.md "The connection to the broker").
  clear_graph_topics();
  publish_state();
  if (config_.sign_in == SignIn::auto_) start_sign_in(default_method());
}

void Account::shutdown() {
  // Tokens that could not be stored yet get one more try: a rotated refresh token must not be
  // lost with the process.
  keeper_.flush();
  if (!sign_in_.active()) return;
  sign_in_.cancel();
  ctx_.mqtt.set_retained(topics_.auth_code(), "");
  reply_waiters(CommandResult::failure("the agent is shutting down"));
  if (forced_ && keeper_.tokens() != nullptr) {
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
  m.topic = topics_.events();
  m.payload = json::object([&](json::Fields& f) {
    f.str("event", event).str("at", format_utc(ctx_.loop.clock().system()));
    if (fields) fields(f);
  });
  ctx_.mqtt.send(std::move(m));
}

void Account::emit_auth_error(const AuthFailure& failure, std::optional<Millis> retry_in) {
  emit("auth_error", [&](json::Fields& f) {
    auth_error_fields(f, failure,
                      retry_in ? std::optional<long long>(seconds_ceil(*retry_in)) : std::nullopt);
  });
  if (retry_in) {
    ctx_.log.warn(config_.name, ": ", failure.error, ": ", failure.description, "; retrying in ",
                  seconds_ceil(*retry_in), " s");
  } else {
    ctx_.log.error(config_.name, ": ", failure.error, ": ", failure.description);
  }
}

std::string Account::code_json() const {
  return auth_code_json(sign_in_.prompt());
}

std::string Account::state_json() const {
  AuthStateView view;
  view.state = state_;
  view.since = since_;
  view.tokens = keeper_.tokens();
  view.prompt = sign_in_.prompt();
  view.reason = reason_;
  view.error = state_error_ ? &*state_error_ : nullptr;
  return auth_state_json(view);
}

void Account::publish_state() {
  // While a code is out, auth/state carries the code's expiry too (docs/mqtt-api.md "Topics the
  // agent publishes" auth/code).
  std::optional<SystemTime> expiry;
  const SignInPrompt* prompt = sign_in_.prompt();
  if (state_ == AuthState::pending && prompt != nullptr) expiry = prompt->expires_at;
  ctx_.mqtt.set_retained(topics_.auth_state(), state_json(), expiry);
}

void Account::publish_code() {
  if (const SignInPrompt* prompt = sign_in_.prompt()) {
    ctx_.mqtt.set_retained(topics_.auth_code(), code_json(), prompt->expires_at);
  } else {
    ctx_.mqtt.set_retained(topics_.auth_code(), "");
  }
}

void Account::set_state(AuthState state, std::optional<SignOutReason> reason,
                        const AuthFailure* error) {
  if (state != state_) since_ = ctx_.loop.clock().system();
  state_ = state;
  reason_ = state == AuthState::signed_out ? reason : std::nullopt;
  state_error_.reset();
  if (reason_ && carries_error(*reason_) && error != nullptr) {
    state_error_ = StateError::of(*error);
  }
  publish_state();
}

void Account::clear_graph_topics() {
  for (auto& r : resources_) {
    r->stop();
    ctx_.mqtt.set_retained(topics_.graph(r->name()), "");
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
  emit("code_issued", [&](json::Fields& f) { code_issued_fields(f, prompt); });
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
  ctx_.mqtt.set_retained(topics_.auth_code(), "");
  if (tokens.user) return;  // adopted at once, and stored there
  // The access token is about to be used for the name: the tokens are on disk first.
  const auto saved = ctx_.store.save(config_.name, binding(), tokens);
  if (!saved.ok) ctx_.log.warn(config_.name, ": ", saved.message);
}

void Account::approved(TokenSet tokens) {
  forced_ = false;
  publish_code();  // clears auth/code
  adopt_tokens(std::move(tokens), /*announce=*/true, /*store=*/true);
}

void Account::ended(SignInEnd end, SignInMethod method, const AuthFailure* failure) {
  switch (end) {
    case SignInEnd::declined:
      reply_waiters(CommandResult::failure("the sign-in was declined"));
      end_sign_in(SignOutReason::declined);
      return;
    case SignInEnd::code_expired: {
      // renew_code renews an expired device code, never a browser sign-in (whatever the login
      // asked for), nor a device code once the tenant's policy made the browser the way in.
      const bool renewing = config_.renew_code && method == SignInMethod::device_code &&
                            default_method() == SignInMethod::device_code;
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
  ctx_.mqtt.set_retained(topics_.auth_code(), "");  // an empty retained payload clears displays
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
  if (forced_ && keeper_.tokens() != nullptr) {
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

void Account::adopt_tokens(TokenSet tokens, bool announce, bool store) {
  const bool was_signed_in = keeper_.tokens() != nullptr && state_ == AuthState::signed_in;
  for (auto& r : resources_) r->stop();
  const bool usable = keeper_.adopt(std::move(tokens), store);
  const TokenSet& t = *keeper_.tokens();
  set_state(AuthState::signed_in, std::nullopt);
  if (announce) {
    emit("signed_in", [&](json::Fields& f) { signed_in_fields(f, t); });
    ctx_.log.info(config_.name, ": signed in", t.user ? " as " + t.user->username : "");
  } else if (!was_signed_in) {
    ctx_.log.info(config_.name, ": signed in with stored tokens");
  }
  // With an expired access token the resources start when the refresh under way succeeds.
  if (usable) {
    for (auto& r : resources_) r->start_now();
  }
}

void Account::tokens_refreshed(const TokenSet& tokens) {
  publish_state();
  emit("token_refreshed",
       [&](json::Fields& f) { f.str("expires_at", format_utc(tokens.expires_at)); });
  for (auto& r : resources_) r->resume();
}

void Account::token_trouble(const AuthFailure& failure, Millis retry_in) {
  emit_auth_error(failure, retry_in);
}

void Account::refresh_refused(const AuthFailure& failure) {
  emit_auth_error(failure, std::nullopt);
  SignOutReason reason = SignOutReason::error;
  if (failure.policy) {
    // AADSTS530036 and kin: tokens a device-code sign-in produced are refused for good.
    reason = SignOutReason::blocked;
    if (config_.sign_in_method == SignInMethodSetting::auto_) browser_preferred_ = true;
    if (config_.sign_in == SignIn::auto_ && default_method() == SignInMethod::browser &&
        !sign_in_.active()) {
      // docs/mqtt-api.md "Browser sign-in and tenant policy": the tokens go, and a browser
      // sign-in follows at once; auth/state goes to pending (no signed_out), as after a refusal
      // of the device code.
      keeper_.forget();
      clear_graph_topics();
      ctx_.log.warn(config_.name, ": the tokens were refused by the tenant's policy and deleted; ",
                    "starting a browser sign-in");
      set_state(AuthState::pending, std::nullopt);
      start_sign_in(SignInMethod::browser);
      return;
    }
  } else if (failure.kind == AuthFailure::Kind::oauth && rejects_refresh_token(failure.error)) {
    reason = SignOutReason::refresh_rejected;
  }
  lose_tokens(reason, &failure);
}

void Account::lose_tokens(SignOutReason reason, const AuthFailure* failure) {
  keeper_.forget();
  clear_graph_topics();
  if (sign_in_.active()) {
    // A sign-in was under way (forced): it goes on, now as a plain one.
    forced_ = false;
    set_state(AuthState::pending, std::nullopt);
    return;
  }
  set_state(AuthState::signed_out, reason, failure);
  emit("signed_out", [&](json::Fields& f) { f.str("reason", to_string(reason)); });
  ctx_.log.warn(config_.name, ": signed out (", to_string(reason), ")");
  if (reason == SignOutReason::refresh_rejected && config_.sign_in == SignIn::auto_) {
    start_sign_in(default_method());
  }
}

void Account::check_token_file() {
  if (sign_in_.active()) return;
  auto tokens = keeper_.new_token_file();
  if (!tokens) return;
  ctx_.log.info(config_.name, ": picked up tokens stored by `graph2mqtt login`");
  ctx_.mqtt.set_retained(topics_.auth_code(), "");
  adopt_tokens(std::move(*tokens), /*announce=*/false, /*store=*/false);
  emit("signed_in", [&](json::Fields& f) { signed_in_fields(f, *keeper_.tokens()); });
}

// --- other commands -----------------------------------------------------------------------------

void Account::logout(Reply reply) {
  if (sign_in_.active()) {
    sign_in_.cancel();
    reply_waiters(CommandResult::failure("the sign-in was ended by a logout"));
  }
  forced_ = false;
  const auto removed = keeper_.forget();  // a waiting refresh learns it is signed out
  clear_graph_topics();
  ctx_.mqtt.set_retained(topics_.auth_code(), "");
  set_state(AuthState::signed_out, SignOutReason::logout);
  emit("signed_out", [](json::Fields& f) { f.str("reason", "logout"); });
  ctx_.log.info(config_.name, ": logged out");
  if (!removed.ok) {
    reply(
        CommandResult::failure("the tokens were dropped from memory, but the token file could "
                               "not be deleted: " +
                               removed.message));
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
    if (keeper_.tokens() == nullptr) {
      reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
      return;
    }
    // One redemption at a time: a refresh under way is joined (and not counted); at most one
    // refresh-started redemption per 10 s (docs/mqtt-api.md "Rate limits"), so a flood of requests
    // cannot trip Microsoft's loop detection (AADSTS50196) and lose the tokens.
    const bool under_way = keeper_.refresh_under_way();
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
    keeper_.refresh([this, reply](bool ok) {
      if (ok) {
        reply(CommandResult::success(state_json()));
      } else if (keeper_.tokens() != nullptr) {
        const long long retry = seconds_ceil(keeper_.retry_in().value_or(Seconds(5)));
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
  ResourcePoller* target = nullptr;
  for (auto& r : resources_) {
    if (r->name() == *resource) target = r.get();
  }
  if (target == nullptr) {
    reply(CommandResult::failure("account `" + config_.name + "` has no resource `" + *resource +
                                 "`"));
    return;
  }
  if (keeper_.tokens() == nullptr) {
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
  // docs/mqtt-api.md "Commands": at most one Graph request per second per command kind, counted
  // from the receipt of requests that reached Graph.
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
  if (keeper_.tokens() == nullptr) {
    reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
    return;
  }
  if (auto wait = graph_rate_limited(last_graph_command_)) {
    reply(CommandResult::failure("at most one `graph` request per second per account", *wait));
    return;
  }
  graph_fetch(ctx_.http, ctx_.loop.clock(), {graph_base(), path, 1, ctx_.mqtt.max_payload_size()},
              graph_auth(), [reply](GraphResult result) {
                // Too large to reply with is a failure, not an ok with a null body.
                if (!result.status || result.code == "too_large") {
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
