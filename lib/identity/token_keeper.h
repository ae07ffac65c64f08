#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/backoff.h"
#include "common/logger.h"
#include "graph/graph_fetch.h"
#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/identity_context.h"
#include "identity/oauth.h"
#include "identity/token_set.h"
#include "identity/token_store.h"
#include "loop/event_loop.h"

namespace g2m {

// What the owner of the tokens hears (on the loop thread).
class TokenEvents {
 public:
  virtual ~TokenEvents() = default;
  // A refresh succeeded; the rotated tokens are stored (or their storage is being retried).
  virtual void tokens_refreshed(const TokenSet& tokens) = 0;
  // A refresh failed transiently, or the tokens could not be stored: retried in `retry_in`.
  virtual void token_trouble(const AuthFailure& failure, Millis retry_in) = 0;
  // The platform refused the refresh token for good (invalid_grant, a tenant policy, ...). The
  // owner decides what that means and calls forget().
  virtual void refresh_refused(const AuthFailure& failure) = 0;
};

struct TokenKeeperContext : IdentityContext {
  TokenStore& store;
  std::size_t index = 0;  // position among the accounts: spreads their refreshes
  std::size_t account_count = 1;
  std::uint64_t refresh_offset = 0;
};

// One account's tokens through their life (docs/mqtt-api.md "Tokens"): adopted after a sign-in or
// from disk, persisted before use (the persist retried while the disk is sick), refreshed on a
// schedule or on demand with one refresh in flight and waiters, forgotten on disk and in memory,
// and the watch for a file that `graph2mqtt login` wrote. It is the GraphAuth fetches use.
class TokenKeeper {
 public:
  TokenKeeper(TokenKeeperContext context, TokenEvents& events);
  ~TokenKeeper();
  TokenKeeper(const TokenKeeper&) = delete;
  TokenKeeper& operator=(const TokenKeeper&) = delete;

  const TokenSet* tokens() const { return tokens_ ? &*tokens_ : nullptr; }
  // Bumps whenever the tokens are replaced or dropped: late answers for old ones are ignored.
  std::uint64_t epoch() const { return epoch_; }

  // The tokens stored at start; `message` says why none were used (corrupt, other binding...).
  TokenStore::LoadResult load();
  // Takes tokens. `store`: write them to disk first (a new sign-in). Returns true when the
  // access token can be used now; false when it had expired and a refresh has started.
  bool adopt(TokenSet tokens, bool store);
  // Refreshes now, or joins the refresh under way; `done(ok)` runs once with its outcome.
  void refresh(std::function<void(bool ok)> done);
  bool refresh_under_way() const { return request_.has_value() || resolving_; }
  // While a failed refresh waits to be retried: how long until it is.
  std::optional<Millis> retry_in() const;
  // Drops the tokens from memory and disk. Waiting refreshes learn it (ok = false).
  TokenStore::WriteResult forget();
  // A token file `graph2mqtt login` wrote since the last look (and that `forget` could not
  // delete is never taken again). Called about once a second while there are no tokens.
  std::optional<TokenSet> new_token_file();
  // One more attempt to store tokens that are still only in memory (at shutdown, at a reload).
  void flush();
  // The same at the process's exit, waiting up to `wait` for a lock another process holds
  // (blocking: nothing else runs any more). Returns false when the tokens are still not stored.
  bool flush_waiting(Millis wait);
  // Tokens that could not be stored yet (the disk failing, the lock held), handed over to the
  // keeper that replaces this one at a reload: the file may hold a refresh token the platform
  // has rotated away. Nothing when everything is on disk.
  std::optional<TokenSet> take_unsaved();
  GraphAuth graph_auth();
  // Which configuration the tokens belong to (the token file records it).
  TokenBinding binding() const;

 private:
  bool persist();
  void schedule();
  void send();
  void on_answer(HttpResponse response);
  void on_failure(const AuthFailure& failure);
  void finish(bool ok);
  // `since`: when the first attempt found the lock busy (storage_error once it is 5 s ago).
  // Cancels every timer and request; the tokens stay as they are.
  void stop_work();
  void retry_remove(std::optional<std::filesystem::file_time_type> file, SteadyTime since,
                    bool reported = false);

  TokenKeeperContext ctx_;
  TokenEvents& events_;
  Jitter jitter_;
  std::optional<TokenSet> tokens_;
  std::uint64_t epoch_ = 0;
  // The endpoint resolver keeps a waiting discovery's callbacks, also of a keeper that is gone
  // (an account a reload removed): they check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<Endpoints> endpoints_;
  std::optional<Http::RequestId> request_;
  bool resolving_ = false;
  std::vector<std::function<void(bool)>> waiters_;
  int failures_ = 0;
  Timer refresh_timer_;
  Timer persist_timer_;
  bool persist_pending_ = false;
  std::optional<SteadyTime> busy_since_;  // the lock has been held by another process since
  std::optional<std::filesystem::file_time_type> seen_file_;
};

}  // namespace g2m
