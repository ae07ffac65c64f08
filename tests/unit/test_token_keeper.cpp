// The token lifecycle on a fake clock: adopt, persist, the refresh schedule, one refresh in
// flight with waiters, transient failures, a refused refresh token, forget, the file watch.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "identity/identity_requests.h"
#include "identity/token_keeper.h"
#include "identity_rig.h"
#include "temp_dir.h"

using namespace g2m;
using namespace std::chrono_literals;

namespace {

std::string param(const std::string& body, const std::string& name) {
  for (const auto& [k, v] : form_decode(body)) {
    if (k == name) return v;
  }
  return "<absent>";
}

struct Events final : TokenEvents {
  std::vector<std::string> seen;
  void tokens_refreshed(const TokenSet&) override { seen.push_back("refreshed"); }
  void token_trouble(const AuthFailure& f, Millis) override {
    seen.push_back("trouble:" + f.error);
  }
  void refresh_refused(const AuthFailure& f) override { seen.push_back("refused:" + f.error); }
};

struct Rig : test::IdentityRig {
  Rig() : store(dir.path() / "tokens"), keeper(TokenKeeperContext{context(7), store}, events) {
    store.prepare();
  }

  TokenSet tokens(std::chrono::seconds lifetime = 1h, const std::string& refresh = "RT-1") {
    TokenSet t;
    t.access_token = Secret("AT-1");
    t.refresh_token = Secret(refresh);
    t.obtained_at = clock.system();
    t.expires_at = clock.system() + lifetime;
    t.scopes = {"User.Read"};
    return t;
  }
  std::string stored_refresh_token() {
    auto loaded = store.load("kitchen", token_binding(options));
    return loaded.tokens ? loaded.tokens->refresh_token.reveal() : "<none>";
  }
  static std::string answer(const std::string& refresh) {
    return R"({"token_type":"Bearer","access_token":"AT-2","refresh_token":")" + refresh +
           R"(","expires_in":3600,"scope":"User.Read"})";
  }

  test::TempDir dir{"g2m-keeper"};
  TokenStore store;
  Events events;
  TokenKeeper keeper;
};

}  // namespace

TEST_CASE("token keeper: new tokens are stored before use and refreshed before they expire") {
  Rig rig;
  CHECK(rig.keeper.adopt(rig.tokens(), /*store=*/true));
  CHECK(rig.stored_refresh_token() == "RT-1");
  CHECK_FALSE(rig.http.has_pending());
  const auto start = rig.clock.steady();
  rig.run_until_request(2h);
  REQUIRE(rig.http.has_pending());
  // 5 minutes before expiry, minus the spread.
  CHECK(rig.clock.steady() - start <= 55min);
  CHECK(rig.clock.steady() - start >= 45min);
  CHECK(param(rig.http.oldest().body, "grant_type") == "refresh_token");
  CHECK(param(rig.http.oldest().body, "refresh_token") == "RT-1");
  CHECK(rig.http.oldest().priority == HttpPriority::urgent);
  rig.http.answer(200, Rig::answer("RT-2"));
  CHECK(rig.events.seen == std::vector<std::string>{"refreshed"});
  // Microsoft rotates refresh tokens: the new one is on disk.
  CHECK(rig.stored_refresh_token() == "RT-2");
  CHECK(rig.keeper.tokens()->access_token.reveal() == "AT-2");
}

TEST_CASE("token keeper: one refresh at a time and a second request joins it") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), true);
  std::vector<bool> outcomes;
  rig.keeper.refresh([&](bool ok) { outcomes.push_back(ok); });
  rig.keeper.refresh([&](bool ok) { outcomes.push_back(ok); });
  CHECK(rig.keeper.refresh_under_way());
  CHECK(rig.http.pending_count() == 1);
  rig.http.answer(200, Rig::answer("RT-2"));
  CHECK(outcomes == std::vector<bool>{true, true});
  CHECK(rig.http.all().size() == 1);
}

TEST_CASE("token keeper: a transient failure keeps the tokens and retries with backoff") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), true);
  bool outcome = true;
  rig.keeper.refresh([&](bool ok) { outcome = ok; });
  rig.http.answer(503, "busy");
  CHECK_FALSE(outcome);
  CHECK(rig.events.seen == std::vector<std::string>{"trouble:http_503"});
  REQUIRE(rig.keeper.tokens());
  REQUIRE(rig.keeper.retry_in());
  CHECK(*rig.keeper.retry_in() >= 4s);
  CHECK(rig.stored_refresh_token() == "RT-1");
  rig.run_until_request(10min);
  REQUIRE(rig.http.has_pending());
  CHECK(param(rig.http.oldest().body, "refresh_token") == "RT-1");
}

TEST_CASE("token keeper: a Retry-After date is counted on the loop's clock, not the wall clock") {
  Rig rig;  // the fake clock says 2026-11-26 19:00:00 UTC
  rig.keeper.adopt(rig.tokens(), true);
  rig.keeper.refresh(nullptr);
  rig.http.answer(test::busy_until("Thu, 26 Nov 2026 19:04:00 GMT"));
  CHECK(rig.events.seen == std::vector<std::string>{"trouble:http_503"});
  REQUIRE(rig.keeper.retry_in());
  CHECK(*rig.keeper.retry_in() == 4min);
}

TEST_CASE("token keeper: a refused refresh token is reported and forget drops memory and disk") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), true);
  bool outcome = true;
  rig.keeper.refresh([&](bool ok) { outcome = ok; });
  rig.http.answer(400, R"({"error":"invalid_grant","error_description":"AADSTS70008: expired"})");
  CHECK(rig.events.seen == std::vector<std::string>{"refused:invalid_grant"});
  CHECK_FALSE(outcome);
  const auto epoch = rig.keeper.epoch();
  CHECK(rig.keeper.forget().ok);
  CHECK(rig.keeper.tokens() == nullptr);
  CHECK(rig.keeper.epoch() != epoch);
  CHECK_FALSE(rig.store.exists("kitchen"));
  rig.run_until_request(3h);
  CHECK_FALSE(rig.http.has_pending());  // nothing scheduled any more
}

TEST_CASE("token keeper: an expired access token at adoption is refreshed at once") {
  Rig rig;
  CHECK_FALSE(rig.keeper.adopt(rig.tokens(-1min), false));
  CHECK(rig.http.has_pending());
  CHECK(rig.keeper.refresh_under_way());
}

TEST_CASE("token keeper: a forget while a refresh is under way tells its waiters") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), true);
  std::optional<bool> outcome;
  bool had_tokens = true;
  rig.keeper.refresh([&](bool ok) {
    outcome = ok;
    had_tokens = rig.keeper.tokens() != nullptr;
  });
  rig.keeper.forget();
  REQUIRE(outcome);
  CHECK_FALSE(*outcome);
  CHECK_FALSE(had_tokens);  // the waiter sees the account already signed out
  CHECK(rig.http.cancelled() == 1);
}

TEST_CASE("token keeper: a token file another process wrote is picked up once") {
  Rig rig;
  rig.keeper.load();
  CHECK_FALSE(rig.keeper.new_token_file());
  TokenStore other(rig.dir.path() / "tokens");
  REQUIRE(other.save("kitchen", token_binding(rig.options), rig.tokens()).ok);
  auto picked = rig.keeper.new_token_file();
  REQUIRE(picked);
  CHECK(picked->refresh_token.reveal() == "RT-1");
  CHECK_FALSE(rig.keeper.new_token_file());
}

namespace {

// A lock on the token file's lock file, as `graph2mqtt login` holds it while it writes.
struct HeldLock {
  explicit HeldLock(const std::filesystem::path& lock)
      : fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
  }
  ~HeldLock() { release(); }
  void release() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fd;
};

// Refuses to delete files, as an immutable folder does (chattr +i).
struct NoUnlink : posix::FileWriter {
  int unlink(const char*) override {
    errno = EPERM;
    return -1;
  }
};

}  // namespace

TEST_CASE("token keeper: a busy lock is retried without blocking, storage_error only after 5 s") {
  Rig rig;
  HeldLock lock(rig.store.lock_for("kitchen"));
  const auto start = rig.clock.steady();
  CHECK_FALSE(rig.store.exists("kitchen"));
  rig.keeper.adopt(rig.tokens(), /*store=*/true);  // returns: the loop is never blocked
  rig.run_until_request(4900ms);
  CHECK(rig.events.seen.empty());  // retried quietly while the other writer may finish
  CHECK_FALSE(rig.store.exists("kitchen"));
  rig.run_until_request(300ms);
  CHECK(rig.events.seen == std::vector<std::string>{"trouble:storage_error"});
  CHECK(rig.clock.steady() - start >= 5s);
  lock.release();
  rig.run_until_request(6s);
  CHECK(rig.stored_refresh_token() == "RT-1");  // nothing was lost meanwhile
}

TEST_CASE("token keeper: a file logout could not delete is not loaded again, also after a reload") {
  test::IdentityRig rig;
  test::TempDir dir{"g2m-keeper"};
  NoUnlink writer;
  TokenStore store(dir.path() / "tokens", writer);
  store.prepare();
  Events events;
  auto keeper = std::make_unique<TokenKeeper>(TokenKeeperContext{rig.context(7), store}, events);
  auto tokens = [&](const char* refresh) {
    TokenSet t;
    t.access_token = Secret("AT-1");
    t.refresh_token = Secret(refresh);
    t.obtained_at = rig.clock.system();
    t.expires_at = rig.clock.system() + 1h;
    return t;
  };
  keeper->adopt(tokens("RT-1"), /*store=*/true);
  REQUIRE(store.exists("kitchen"));
  CHECK_FALSE(keeper->forget().ok);  // logout: the file stays on disk
  CHECK_FALSE(keeper->new_token_file());
  // A reload restarts the account: a new keeper on the same store.
  keeper = std::make_unique<TokenKeeper>(TokenKeeperContext{rig.context(7), store}, events);
  const auto loaded = keeper->load();
  CHECK(loaded.kind == TokenStore::LoadResult::Kind::unreadable);
  CHECK_FALSE(loaded.tokens);
  CHECK(loaded.message.find("could not be deleted") != std::string::npos);
  CHECK_FALSE(keeper->new_token_file());
  // A file `graph2mqtt login` writes later takes its place and is used.
  TokenStore other(dir.path() / "tokens");
  REQUIRE(other.save("kitchen", token_binding(rig.options), tokens("RT-new")).ok);
  // Written later in real life: a file system's timestamps may not tell two writes in the same
  // few milliseconds apart.
  std::filesystem::last_write_time(store.file_for("kitchen"),
                                   std::filesystem::file_time_type::clock::now() + 1s);
  auto picked = keeper->new_token_file();
  REQUIRE(picked);
  CHECK(picked->refresh_token.reveal() == "RT-new");
}

TEST_CASE("token keeper: a removal the lock delayed never deletes a file written meanwhile") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), /*store=*/true);
  auto lock = std::make_unique<HeldLock>(rig.store.lock_for("kitchen"));
  CHECK(rig.keeper.forget().busy);  // logout while `graph2mqtt login` holds the lock
  CHECK(rig.store.exists("kitchen"));
  CHECK_FALSE(rig.keeper.new_token_file());  // the old file is not taken back meanwhile
  // `graph2mqtt login` writes its new tokens and lets go of the lock.
  lock.reset();
  TokenStore other(rig.dir.path() / "tokens");
  REQUIRE(other.save("kitchen", token_binding(rig.options), rig.tokens(1h, "RT-login")).ok);
  std::filesystem::last_write_time(rig.store.file_for("kitchen"),
                                   std::filesystem::file_time_type::clock::now() + 1s);
  rig.run_until_request(2s);
  CHECK(rig.store.exists("kitchen"));  // the delayed removal left the new file alone
  auto picked = rig.keeper.new_token_file();
  REQUIRE(picked);
  CHECK(picked->refresh_token.reveal() == "RT-login");
}

TEST_CASE("token keeper: a removal the lock delayed happens once the lock is free") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(), /*store=*/true);
  auto lock = std::make_unique<HeldLock>(rig.store.lock_for("kitchen"));
  CHECK(rig.keeper.forget().busy);
  rig.run_until_request(4800ms);
  CHECK(rig.store.exists("kitchen"));
  CHECK(rig.events.seen.empty());  // quiet while the other writer may finish
  rig.run_until_request(3s);
  CHECK(rig.events.seen == std::vector<std::string>{"trouble:storage_error"});  // once
  lock.reset();
  rig.run_until_request(1s);
  CHECK_FALSE(rig.store.exists("kitchen"));
}

TEST_CASE("token keeper: at exit, tokens only in memory are stored, a held lock waited for") {
  // The waiting itself (save once the lock is released) is save_waiting's, tested with the store.
  Rig rig;
  auto lock = std::make_unique<HeldLock>(rig.store.lock_for("kitchen"));
  rig.keeper.adopt(rig.tokens(1h, "RT-rotated"), /*store=*/true);  // busy: only in memory
  CHECK_FALSE(rig.store.exists("kitchen"));
  CHECK_FALSE(rig.keeper.flush_waiting(100ms));  // still held after the wait: says so
  lock.reset();                                  // `graph2mqtt login` is done
  CHECK(rig.keeper.flush_waiting(5s));
  CHECK(rig.stored_refresh_token() == "RT-rotated");
  CHECK(rig.keeper.flush_waiting(0ms));  // nothing left to store
}

TEST_CASE("token keeper: take_unsaved hands over tokens only in memory, nothing once stored") {
  Rig rig;
  rig.keeper.adopt(rig.tokens(1h, "RT-stored"), /*store=*/true);
  CHECK_FALSE(rig.keeper.take_unsaved());
  CHECK(rig.keeper.tokens() != nullptr);
  HeldLock lock(rig.store.lock_for("kitchen"));
  rig.keeper.adopt(rig.tokens(1h, "RT-rotated"), /*store=*/true);
  auto unsaved = rig.keeper.take_unsaved();
  REQUIRE(unsaved);
  CHECK(unsaved->refresh_token.reveal() == "RT-rotated");
  CHECK(rig.keeper.tokens() == nullptr);
  rig.run_until_request(10s);
  CHECK(rig.events.seen.empty());  // no retry left behind in the old keeper
}
