#include "identity/token_keeper.h"

#include "common/time_format.h"
#include "identity/identity_requests.h"
#include "identity/refresh_schedule.h"

namespace g2m {

namespace {
constexpr Millis kMaxBackoff{300'000};  // docs/mqtt-api.md: backoff capped at 5 minutes
constexpr Millis kPersistRetry{5'000};
// Another process (`graph2mqtt login`) holds the lock: try again soon, and say storage_error
// only once it has been held this long (docs/mqtt-api.md "Tokens").
constexpr Millis kLockRetry{200};
constexpr Millis kLockPatience{5'000};
}  // namespace

TokenKeeper::TokenKeeper(TokenKeeperContext context, TokenEvents& events)
    : ctx_(context),
      events_(events),
      jitter_(context.seed),
      refresh_timer_(context.loop),
      persist_timer_(context.loop) {}

TokenKeeper::~TokenKeeper() {
  if (request_) ctx_.http.cancel(*request_);
}

TokenBinding TokenKeeper::binding() const {
  return token_binding(ctx_.account);
}

TokenStore::LoadResult TokenKeeper::load() {
  auto loaded = ctx_.store.load(ctx_.account.name, binding());
  seen_file_ = ctx_.store.modified(ctx_.account.name);
  return loaded;
}

bool TokenKeeper::adopt(TokenSet tokens, bool store) {
  tokens_ = std::move(tokens);
  ++epoch_;
  if (store) persist();  // on disk before the new access token is used
  if (tokens_->expires_at <= ctx_.loop.clock().system()) {
    // A restart with an expired access token refreshes at once, without any user action.
    refresh(nullptr);
    return false;
  }
  schedule();
  return true;
}

bool TokenKeeper::persist() {
  if (!tokens_) return true;
  const auto result = ctx_.store.save(ctx_.account.name, binding(), *tokens_);
  if (result.ok) {
    persist_pending_ = false;
    busy_since_.reset();
    seen_file_ = ctx_.store.modified(ctx_.account.name);
    return true;
  }
  // Keep the tokens in memory, report, and try again: nothing is lost while the disk is sick.
  persist_pending_ = true;
  if (result.busy) {
    const auto now = ctx_.loop.clock().steady();
    if (!busy_since_) busy_since_ = now;
    if (now - *busy_since_ < kLockPatience) {
      persist_timer_.start_after(kLockRetry, [this] {
        if (persist_pending_) persist();
      });
      return false;
    }
  }
  AuthFailure f;
  f.error = "storage_error";
  f.description = result.message;
  persist_timer_.start_after(kPersistRetry, [this] {
    if (persist_pending_) persist();
  });
  events_.token_trouble(f, kPersistRetry);
  return false;
}

void TokenKeeper::flush() {
  if (persist_pending_) persist();
}

bool TokenKeeper::flush_waiting(Millis wait) {
  if (!persist_pending_ || !tokens_) return true;
  const auto result = ctx_.store.save_waiting(ctx_.account.name, binding(), *tokens_, wait);
  if (!result.ok) {
    ctx_.log.error(ctx_.account.name, ": the refreshed tokens could not be stored before exit (",
                   result.message, "); the next start uses the previous file");
    return false;
  }
  persist_pending_ = false;
  persist_timer_.cancel();
  return true;
}

std::optional<TokenSet> TokenKeeper::take_unsaved() {
  if (!persist_pending_ || !tokens_) return std::nullopt;
  stop_work();
  std::optional<TokenSet> unsaved = std::move(tokens_);
  tokens_.reset();
  finish(false);
  return unsaved;
}

void TokenKeeper::stop_work() {
  refresh_timer_.cancel();
  persist_timer_.cancel();
  persist_pending_ = false;
  if (request_) ctx_.http.cancel(*request_);
  request_.reset();
  resolving_ = false;
  failures_ = 0;
  ++epoch_;  // answers still on their way are dropped
}

void TokenKeeper::schedule() {
  if (!tokens_) return;
  const SystemTime when = refresh_time(tokens_->obtained_at, tokens_->expires_at, ctx_.index,
                                       ctx_.account_count, ctx_.refresh_offset);
  const auto delay = std::max<Millis>(
      Millis(0), std::chrono::duration_cast<Millis>(when - ctx_.loop.clock().system()));
  refresh_timer_.start_after(delay, [this] { refresh(nullptr); });
}

std::optional<Millis> TokenKeeper::retry_in() const {
  if (!tokens_ || !refresh_timer_.active() || failures_ == 0) return std::nullopt;
  return std::chrono::duration_cast<Millis>(refresh_timer_.deadline() - ctx_.loop.clock().steady());
}

void TokenKeeper::refresh(std::function<void(bool)> done) {
  if (done) waiters_.push_back(std::move(done));
  if (refresh_under_way()) return;  // one redemption at a time: wait for it
  if (!tokens_ || tokens_->refresh_token.empty()) {
    finish(false);
    return;
  }
  refresh_timer_.cancel();
  if (endpoints_) {
    send();
    return;
  }
  resolving_ = true;
  const std::uint64_t epoch = epoch_;
  ctx_.endpoints.resolve(
      ctx_.account, ctx_.loop.clock(),
      [this, epoch, alive = std::weak_ptr<bool>(alive_)](EndpointResolver::Result result) {
        if (alive.expired()) return;                 // the keeper is gone
        if (!resolving_ || epoch != epoch_) return;  // forgotten meanwhile
        resolving_ = false;
        if (auto* failure = std::get_if<AuthFailure>(&result)) {
          // No endpoints yet: keep the tokens and try again later.
          AuthFailure f = *failure;
          f.kind = AuthFailure::Kind::transient;
          on_failure(f);
          return;
        }
        endpoints_ = std::get<Endpoints>(result);
        send();
      });
}

void TokenKeeper::send() {
  HttpRequest request = refresh_request(ctx_.account, *endpoints_, tokens_->refresh_token);
  // Refreshes keep accounts signed in: never behind other accounts' code requests or fetches.
  request.priority = HttpPriority::urgent;
  ctx_.log.debug(ctx_.account.name, ": refreshing the access token");
  request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    request_.reset();
    on_answer(std::move(response));
  });
}

void TokenKeeper::on_answer(HttpResponse response) {
  if (!tokens_) {
    finish(false);
    return;
  }
  auto outcome = parse_token_response(response, ctx_.loop.clock().system());
  if (auto* t = std::get_if<TokenResponse>(&outcome)) {
    failures_ = 0;
    tokens_ = make_token_set(std::move(*t), ctx_.loop.clock().system(), &*tokens_);
    persist();  // the rotated refresh token is on disk before the access token is used
    ctx_.log.info(ctx_.account.name, ": access token refreshed, expires at ",
                  format_utc(tokens_->expires_at));
    schedule();
    events_.tokens_refreshed(*tokens_);
    finish(true);
    return;
  }
  on_failure(std::get<AuthFailure>(outcome));
}

void TokenKeeper::on_failure(const AuthFailure& failure) {
  if (failure.kind == AuthFailure::Kind::transient) {
    const Millis delay =
        retry_delay(failures_, Seconds(5), kMaxBackoff, jitter_, failure.retry_after);
    refresh_timer_.start_after(delay, [this] { refresh(nullptr); });
    events_.token_trouble(failure, delay);
    finish(false);
    return;
  }
  events_.refresh_refused(failure);
  finish(false);
}

void TokenKeeper::finish(bool ok) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w(ok);
}

TokenStore::WriteResult TokenKeeper::forget() {
  stop_work();
  if (tokens_) {
    tokens_->access_token.clear();
    tokens_->refresh_token.clear();
  }
  tokens_.reset();
  const auto before = ctx_.store.modified(ctx_.account.name);
  auto removed = ctx_.store.remove(ctx_.account.name);
  if (removed.busy) retry_remove(before, ctx_.loop.clock().steady());
  if (!removed.ok) {
    ctx_.log.error(ctx_.account.name, ": ", removed.message);
    // Never loaded again by this run, also after a reload (docs/mqtt-api.md "Tokens").
    ctx_.store.refuse_current_file(ctx_.account.name);
  }
  seen_file_.reset();
  finish(false);  // after the tokens are gone: a waiting refresh learns it
  return removed;
}

void TokenKeeper::retry_remove(std::optional<std::filesystem::file_time_type> file,
                               SteadyTime since, bool reported) {
  // The lock is held by another process: the file goes as soon as it is free (and until then it
  // is never loaded again).
  persist_timer_.start_after(kLockRetry, [this, file, since, reported] {
    if (tokens_) return;  // signed in again meanwhile: that file is wanted now
    // `graph2mqtt login` held the lock to write a new file: that one is wanted, not removed.
    if (ctx_.store.modified(ctx_.account.name) != file) return;
    const auto removed = ctx_.store.remove(ctx_.account.name);
    if (!removed.busy) return;
    const bool report = !reported && ctx_.loop.clock().steady() - since >= kLockPatience;
    if (report) {
      // Said once, as for a write (docs/mqtt-api.md "Tokens"); the removal goes on trying.
      AuthFailure f;
      f.error = "storage_error";
      f.description = removed.message;
      events_.token_trouble(f, kLockRetry);
    }
    retry_remove(file, since, reported || report);
  });
}

std::optional<TokenSet> TokenKeeper::new_token_file() {
  if (tokens_) return std::nullopt;
  const auto modified = ctx_.store.modified(ctx_.account.name);
  if (!modified || modified == seen_file_) return std::nullopt;
  if (ctx_.store.refused(ctx_.account.name)) return std::nullopt;
  seen_file_ = modified;
  auto loaded = ctx_.store.load(ctx_.account.name, binding());
  if (loaded.kind != TokenStore::LoadResult::Kind::ok || !loaded.tokens) {
    if (loaded.kind != TokenStore::LoadResult::Kind::none) {
      ctx_.log.warn(ctx_.account.name, ": new token file not used: ", loaded.message);
    }
    return std::nullopt;
  }
  return std::move(loaded.tokens);
}

GraphAuth TokenKeeper::graph_auth() {
  GraphAuth auth;
  auth.bearer = [this]() -> std::optional<std::string> {
    if (!tokens_) return std::nullopt;
    return tokens_->access_token.reveal();
  };
  auth.refresh = [this](std::function<void(bool)> done) { refresh(std::move(done)); };
  return auth;
}

}  // namespace g2m
