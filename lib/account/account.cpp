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
      poll_timer_(ctx_.loop),
      expiry_timer_(ctx_.loop),
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
  auto loaded = ctx_.store.load(config_.name, binding());
  using Kind = TokenStore::LoadResult::Kind;
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  if (loaded.kind == Kind::ok && loaded.tokens) {
    seen_token_file_ = ctx_.store.modified(config_.name);
    adopt_tokens(std::move(*loaded.tokens), /*announce=*/false);
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
  if (config_.sign_in == SignIn::auto_) start_sign_in(false);
}

void Account::shutdown() {
  if (phase_ == Phase::idle) return;
  stop_sign_in_io();
  phase_ = Phase::idle;
  flow_.reset();
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  reply_waiters(CommandResult::failure("the agent is shutting down"));
  if (forced_ && tokens_) {
    forced_ = false;
    set_state(AuthState::signed_in, std::nullopt);
  } else {
    set_state(AuthState::signed_out, "shutdown");
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
  });
  if (retry_in) {
    ctx_.log.warn(config_.name, ": ", failure.error, ": ", failure.description, "; retrying in ",
                  seconds_ceil(*retry_in), " s");
  } else {
    ctx_.log.error(config_.name, ": ", failure.error, ": ", failure.description);
  }
}

std::string Account::code_json() const {
  if (phase_ != Phase::polling || !flow_) return "null";
  const auto& c = flow_->code();
  return json::object([&](json::Fields& f) {
    f.str("user_code", c.user_code).str("verification_uri", c.verification_uri);
    f.opt_str("verification_uri_complete", c.verification_uri_complete);
    f.str("message", c.message).str("expires_at", format_utc(flow_->expires_at_system()));
    f.num("interval", flow_->interval().count());
  });
}

std::string Account::state_json() const {
  return json::object([&](json::Fields& f) {
    f.str("state", to_string(state_)).str("since", format_utc(since_));
    const bool pending = state_ == AuthState::pending;
    // While a forced re-sign-in is pending, user and scopes are still the old tokens'.
    f.raw("user", user_json(tokens_ ? tokens_->user : std::nullopt));
    if (state_ == AuthState::signed_in && tokens_) {
      f.str("expires_at", format_utc(tokens_->expires_at));
    } else if (pending && phase_ == Phase::polling && flow_) {
      f.str("expires_at", format_utc(flow_->expires_at_system()));
    } else {
      f.null("expires_at");
    }
    f.strings("scopes", tokens_ ? tokens_->scopes : std::vector<std::string>{});
    if (state_ == AuthState::signed_out)
      f.opt_str("reason", reason_);
    else
      f.null("reason");
    f.raw("code", code_json());
  });
}

void Account::publish_state() {
  // While a code is out, auth/state carries the code's expiry too (CONTRACT §1 auth/code).
  std::optional<SystemTime> expiry;
  if (state_ == AuthState::pending && phase_ == Phase::polling && flow_) {
    expiry = flow_->expires_at_system();
  }
  ctx_.mqtt.set_retained(topic("auth/state"), state_json(), expiry);
}

void Account::publish_code() {
  if (phase_ == Phase::polling && flow_) {
    ctx_.mqtt.set_retained(topic("auth/code"), code_json(), flow_->expires_at_system());
  } else {
    ctx_.mqtt.set_retained(topic("auth/code"), "");
  }
}

void Account::set_state(AuthState state, std::optional<std::string> reason) {
  if (state != state_) since_ = ctx_.loop.clock().system();
  state_ = state;
  reason_ = state == AuthState::signed_out ? std::move(reason) : std::nullopt;
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
  return phase_ != Phase::idle;
}

std::optional<SteadyTime> Account::code_expires_at() const {
  if (phase_ == Phase::polling && flow_) return flow_->expires_at();
  return std::nullopt;
}

bool Account::login_would_start(bool force) const {
  return phase_ == Phase::idle && (state_ != AuthState::signed_in || force);
}

void Account::login(bool force, Reply reply) {
  if (phase_ == Phase::requesting) {
    // The first login's device-code request is in flight: this one gets the same outcome.
    login_waiters_.push_back(std::move(reply));
    return;
  }
  if (phase_ == Phase::polling || (state_ == AuthState::signed_in && !force)) {
    reply(CommandResult::success(state_json()));
    return;
  }
  const auto now = ctx_.loop.now();
  if (last_user_login_ && now - *last_user_login_ < kLoginRateWindow) {
    const auto wait = seconds_ceil(
        std::chrono::duration_cast<Millis>(kLoginRateWindow - (now - *last_user_login_)));
    reply(CommandResult::failure(
        "a sign-in was started less than 10 s ago; wait " + std::to_string(wait) + " s", wait));
    return;
  }
  last_user_login_ = now;
  forced_ = state_ == AuthState::signed_in;
  login_waiters_.push_back(std::move(reply));
  start_sign_in(true);
}

void Account::start_sign_in(bool /*user_requested*/) {
  phase_ = Phase::requesting;
  device_code_failures_ = 0;
  send_device_code_request();
}

void Account::send_device_code_request() {
  code_requested_at_ = ctx_.loop.clock().steady();
  code_requested_at_system_ = ctx_.loop.clock().system();
  sign_in_resolving_ = true;
  ctx_.endpoints.resolve(config_, [this](EndpointResolver::Result result) {
    if (!sign_in_resolving_) return;  // cancelled meanwhile
    sign_in_resolving_ = false;
    if (auto* failure = std::get_if<AuthFailure>(&result)) {
      on_device_code_failure(*failure);
      return;
    }
    endpoints_ = std::get<Endpoints>(result);
    HttpRequest request = device_code_request(ctx_.config, config_, *endpoints_);
    // Expiry counts from when the device-code request is sent (Microsoft's documentation).
    code_requested_at_ = ctx_.loop.clock().steady();
    code_requested_at_system_ = ctx_.loop.clock().system();
    ctx_.log.info(config_.name, ": requesting a device code");
    sign_in_request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
      sign_in_request_.reset();
      on_device_code(std::move(response));
    });
  });
}

void Account::on_device_code_failure(const AuthFailure& failure) {
  if (failure.kind == AuthFailure::Kind::transient) {
    const Millis delay = std::max<Millis>(
        backoff_delay(device_code_failures_++, Seconds(5), kMaxAuthBackoff, jitter_.next()),
        failure.retry_after.value_or(Seconds(0)));
    emit_auth_error(failure, delay);
    reply_waiters(CommandResult::failure("the identity platform could not be reached (" +
                                             failure.error + "); retrying in " +
                                             std::to_string(seconds_ceil(delay)) + " s",
                                         seconds_ceil(delay)));
    poll_timer_.start_after(delay, [this] { send_device_code_request(); });
    return;
  }
  emit_auth_error(failure, std::nullopt);
  reply_waiters(
      CommandResult::failure("sign-in failed: " + failure.error + ": " + failure.description));
  end_sign_in("error");
}

void Account::on_device_code(HttpResponse response) {
  // The URL the request went to: only a loopback http:// identity server may send http:// pages.
  auto outcome = parse_device_code_response(
      response, endpoints_ ? std::string_view(endpoints_->device_authorization) : "");
  if (auto* failure = std::get_if<AuthFailure>(&outcome)) {
    on_device_code_failure(*failure);
    return;
  }
  flow_.emplace(std::move(std::get<DeviceCode>(outcome)), code_requested_at_,
                ctx_.loop.clock().steady(), code_requested_at_system_, jitter_.next() * 1e18);
  phase_ = Phase::polling;
  ctx_.log.info(config_.name, ": code ", flow_->code().user_code, " issued, expires at ",
                format_utc(flow_->expires_at_system()));
  publish_code();
  set_state(AuthState::pending, std::nullopt);
  emit("code_issued", [&](json::Fields& f) {
    f.str("user_code", flow_->code().user_code)
        .str("verification_uri", flow_->code().verification_uri);
    if (flow_->code().verification_uri_complete) {
      f.str("verification_uri_complete", *flow_->code().verification_uri_complete);
    }
    f.str("expires_at", format_utc(flow_->expires_at_system()));
  });
  reply_waiters(CommandResult::success(state_json()));
  expiry_timer_.start_at(flow_->expires_at(), [this] {
    ctx_.log.info(config_.name, ": the code expired unused");
    end_sign_in("code_expired", config_.renew_code);
  });
  schedule_poll();
}

void Account::schedule_poll() {
  poll_timer_.start_at(flow_->next_poll_at(), [this] { send_poll(); });
}

void Account::send_poll() {
  if (!flow_) return;
  HttpRequest request =
      device_token_request(ctx_.config, config_, *endpoints_, flow_->code().device_code);
  flow_->poll_sent();
  sign_in_request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    sign_in_request_.reset();
    on_poll(std::move(response));
  });
}

void Account::on_poll(HttpResponse response) {
  if (!flow_) return;
  auto decision = flow_->on_poll_result(parse_token_response(response), ctx_.loop.clock().steady());
  using Kind = DeviceFlow::Decision::Kind;
  switch (decision.kind) {
    case Kind::poll_again:
      if (decision.failure) {
        emit_auth_error(*decision.failure, std::chrono::duration_cast<Millis>(
                                               decision.next_poll_at - ctx_.loop.clock().steady()));
      }
      if (decision.interval_changed) {
        ctx_.log.info(config_.name, ": slow_down: polling every ", flow_->interval().count(), " s");
        publish_code();
        publish_state();
      }
      if (decision.next_poll_at < flow_->expires_at()) schedule_poll();
      return;
    case Kind::approved:
      on_approved(std::move(*decision.tokens));
      return;
    case Kind::declined:
      end_sign_in("declined");
      return;
    case Kind::expired:
      end_sign_in("code_expired", config_.renew_code);
      return;
    case Kind::failed:
      emit_auth_error(*decision.failure, std::nullopt);
      end_sign_in("error");
      return;
  }
}

void Account::stop_sign_in_io() {
  sign_in_resolving_ = false;
  poll_timer_.cancel();
  expiry_timer_.cancel();
  if (sign_in_request_) ctx_.http.cancel(*sign_in_request_);
  sign_in_request_.reset();
}

void Account::reply_waiters(const CommandResult& result) {
  auto waiters = std::move(login_waiters_);
  login_waiters_.clear();
  for (auto& w : waiters) w(result);
}

void Account::end_sign_in(const std::string& reason, bool renewing) {
  stop_sign_in_io();
  const bool had_code = flow_.has_value();
  flow_.reset();
  phase_ = Phase::idle;
  if (had_code) publish_code();  // empty retained payload clears the display
  if (reason == "declined") emit("declined", nullptr);
  if (reason == "cancelled") emit("cancelled", nullptr);
  if (reason == "code_expired") {
    emit("code_expired", [&](json::Fields& f) { f.boolean("renewing", renewing); });
  }
  if (renewing) {
    // auth/state stays pending with code and expires_at null until the new code is out.
    publish_state();
    start_sign_in(false);
    return;
  }
  if (forced_ && tokens_) {
    // A failed forced re-sign-in returns to the old tokens without a signed_out.
    forced_ = false;
    set_state(AuthState::signed_in, std::nullopt);
    return;
  }
  forced_ = false;
  set_state(AuthState::signed_out, reason);
  emit("signed_out", [&](json::Fields& f) { f.str("reason", reason); });
  ctx_.log.info(config_.name, ": signed out (", reason, ")");
}

void Account::on_approved(TokenResponse response) {
  stop_sign_in_io();
  flow_.reset();
  phase_ = Phase::idle;
  forced_ = false;
  TokenSet tokens = make_token_set(std::move(response), ctx_.loop.clock().system());
  publish_code();  // clears auth/code
  if (tokens.user) {
    adopt_tokens(std::move(tokens), /*announce=*/true);
    return;
  }
  fetch_user_then_adopt(std::move(tokens));
}

void Account::fetch_user_then_adopt(TokenSet tokens) {
  // No name in an id_token: ask Graph's /me (or the provider's userinfo endpoint) before
  // announcing the sign-in, so signed_in carries the user (CONTRACT §1 auth/state U).
  const bool oidc = ctx_.config.identity.provider == Provider::oidc;
  if (oidc && !(endpoints_ && endpoints_->userinfo)) {
    adopt_tokens(std::move(tokens), /*announce=*/true);
    return;
  }
  const auto saved = ctx_.store.save(config_.name, binding(), tokens);  // on disk before use
  if (!saved.ok) ctx_.log.warn(config_.name, ": ", saved.message);
  auto pending = std::make_shared<TokenSet>(std::move(tokens));
  GraphAuth auth;
  auth.bearer = [pending]() -> std::optional<std::string> {
    return pending->access_token.reveal();
  };
  const std::uint64_t epoch = token_epoch_;
  const std::string base = oidc ? *endpoints_->userinfo : graph_base();
  graph_fetch(ctx_.http, base, oidc ? "" : "/me", 1, auth,
              [this, pending, epoch, oidc](GraphResult result) {
                if (epoch != token_epoch_) return;  // logged out meanwhile
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
                  ctx_.log.warn(config_.name, ": could not read the user's name: ", result.code);
                }
                adopt_tokens(std::move(*pending), /*announce=*/true);
              });
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
  lose_tokens(failure.kind == AuthFailure::Kind::oauth && rejects_refresh_token(failure.error)
                  ? "refresh_rejected"
                  : "error");
  finish_refresh(false);
}

void Account::finish_refresh(bool ok) {
  auto waiters = std::move(refresh_waiters_);
  refresh_waiters_.clear();
  for (auto& w : waiters) w(ok);
}

void Account::lose_tokens(const std::string& reason) {
  refresh_timer_.cancel();
  persist_retry_timer_.cancel();
  persist_pending_ = false;
  if (refresh_request_) ctx_.http.cancel(*refresh_request_);
  refresh_request_.reset();
  if (tokens_) {
    tokens_->access_token.clear();
    tokens_->refresh_token.clear();
  }
  tokens_.reset();
  ++token_epoch_;
  const auto removed = ctx_.store.remove(config_.name);
  if (!removed.ok) ctx_.log.error(config_.name, ": ", removed.message);
  seen_token_file_.reset();
  clear_graph_topics();
  if (phase_ != Phase::idle) {
    // A sign-in was under way (forced): it goes on, now as a plain one.
    forced_ = false;
    set_state(AuthState::pending, std::nullopt);
    return;
  }
  set_state(AuthState::signed_out, reason);
  emit("signed_out", [&](json::Fields& f) { f.str("reason", reason); });
  ctx_.log.warn(config_.name, ": signed out (", reason, ")");
  if (reason == "refresh_rejected" && config_.sign_in == SignIn::auto_) start_sign_in(false);
}

void Account::check_token_file() {
  if (tokens_ || phase_ != Phase::idle) return;
  const auto modified = ctx_.store.modified(config_.name);
  if (!modified || modified == seen_token_file_) return;
  seen_token_file_ = modified;
  auto loaded = ctx_.store.load(config_.name, binding());
  if (loaded.kind != TokenStore::LoadResult::Kind::ok || !loaded.tokens) {
    if (loaded.kind != TokenStore::LoadResult::Kind::none) {
      ctx_.log.warn(config_.name, ": new token file not used: ", loaded.message);
    }
    return;
  }
  ctx_.log.info(config_.name, ": picked up tokens stored by `graph2mqtt login`");
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  adopt_tokens(std::move(*loaded.tokens), /*announce=*/false);
  emit("signed_in", [&](json::Fields& f) {
    f.raw("user", user_json(tokens_->user));
    f.strings("scopes", tokens_->scopes);
  });
}

// --- other commands -----------------------------------------------------------------------------

void Account::logout(Reply reply) {
  if (phase_ != Phase::idle) {
    stop_sign_in_io();
    flow_.reset();
    phase_ = Phase::idle;
    reply_waiters(CommandResult::failure("the sign-in was ended by a logout"));
  }
  forced_ = false;
  refresh_timer_.cancel();
  persist_retry_timer_.cancel();
  if (refresh_request_) ctx_.http.cancel(*refresh_request_);
  refresh_request_.reset();
  finish_refresh(false);
  if (tokens_) {
    tokens_->access_token.clear();
    tokens_->refresh_token.clear();
  }
  tokens_.reset();
  ++token_epoch_;
  const auto removed = ctx_.store.remove(config_.name);
  seen_token_file_.reset();
  ctx_.mqtt.set_retained(topic("auth/code"), "");
  clear_graph_topics();
  set_state(AuthState::signed_out, "logout");
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
  if (phase_ == Phase::idle) {
    reply(CommandResult::failure("no sign-in is pending for account `" + config_.name + "`"));
    return;
  }
  reply_waiters(CommandResult::failure("the sign-in was cancelled"));
  end_sign_in("cancelled");
  reply(CommandResult::success(state_json()));
}

void Account::refresh(const std::optional<std::string>& resource, Reply reply) {
  if (!resource) {
    if (!tokens_) {
      reply(CommandResult::failure("account `" + config_.name + "` is not signed in"));
      return;
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
        reply(CommandResult::failure("the refresh was refused; the account is signed out"));
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
