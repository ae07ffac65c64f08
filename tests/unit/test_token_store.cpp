#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/time_format.h"
#include "identity/token_store.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using g2m::TokenBinding;
using g2m::TokenSet;
using g2m::TokenStore;
using Kind = TokenStore::LoadResult::Kind;

using g2m::test::TempDir;

namespace {

// Distinctive so that a leak into any message is found by a plain substring search.
const std::string access_text = "eyJACCESS-TOKEN-7f3a9c-secret";
const std::string refresh_text = "0.REFRESH-TOKEN-b41e2d-secret";

TokenBinding binding() {
  return {"00000000-0000-0000-0000-000000000001", "organizations",
          "https://login.microsoftonline.com", "v2"};
}

g2m::SystemTime at(const char* iso) {
  const auto t = g2m::parse_utc(iso);
  REQUIRE(t.has_value());
  return *t;
}

TokenSet tokens() {
  TokenSet t;
  t.access_token = g2m::Secret(access_text);
  t.refresh_token = g2m::Secret(refresh_text);
  t.expires_at = at("2026-11-26T20:04:05Z");
  t.obtained_at = at("2026-11-26T19:04:05Z");
  t.scopes = {"User.Read", "Presence.Read", "offline_access"};
  t.user = g2m::User{"Ada Lovelace", "ada@contoso.example"};
  return t;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool is_root() {
  return ::geteuid() == 0;
}

void check_no_secret(const std::string& message) {
  CHECK(message.find(access_text) == std::string::npos);
  CHECK(message.find(refresh_text) == std::string::npos);
  CHECK(message.find("ACCESS-TOKEN") == std::string::npos);
  CHECK(message.find("REFRESH-TOKEN") == std::string::npos);
}

// Any file in the folder whose name marks it as one of save()'s temporaries.
bool temp_file_left(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) return true;
  }
  return false;
}

// A store in <tmp>/tokens, prepared, holding one good file for "kitchen".
struct Saved {
  TempDir tmp;
  TokenStore store{tmp.path() / "tokens"};
  std::string original;
  Saved() {
    store.prepare();
    const auto r = store.save("kitchen", binding(), tokens());
    REQUIRE(r.ok);
    original = read_bytes(store.file_for("kitchen"));
    REQUIRE(!original.empty());
  }
};

}  // namespace

TEST_CASE("token store: tokens survive a save and a load") {
  TempDir tmp;
  TokenStore store(tmp.path() / "tokens");
  store.prepare();

  SUBCASE("with a user and a refresh token") {
    const TokenSet in = tokens();
    REQUIRE(store.save("kitchen", binding(), in).ok);
    const auto out = store.load("kitchen", binding());
    REQUIRE(out.kind == Kind::ok);
    REQUIRE(out.tokens.has_value());
    CHECK(out.tokens->access_token == in.access_token);
    CHECK(out.tokens->refresh_token == in.refresh_token);
    CHECK(out.tokens->expires_at == in.expires_at);
    CHECK(out.tokens->obtained_at == in.obtained_at);
    CHECK(out.tokens->scopes == in.scopes);
    CHECK(out.tokens->user == in.user);
    CHECK(out.message.empty());
  }
  SUBCASE("with no user, no scopes and an empty refresh token") {
    TokenSet in = tokens();
    in.user.reset();
    in.scopes.clear();
    in.refresh_token = g2m::Secret();
    REQUIRE(store.save("kitchen", binding(), in).ok);
    const auto out = store.load("kitchen", binding());
    REQUIRE(out.kind == Kind::ok);
    CHECK(out.tokens->refresh_token.empty());
    CHECK(out.tokens->scopes.empty());
    CHECK_FALSE(out.tokens->user.has_value());
  }
  SUBCASE("a second save replaces the first") {
    REQUIRE(store.save("kitchen", binding(), tokens()).ok);
    TokenSet newer = tokens();
    newer.access_token = g2m::Secret("second-access");
    newer.refresh_token = g2m::Secret("second-refresh");
    REQUIRE(store.save("kitchen", binding(), newer).ok);
    const auto out = store.load("kitchen", binding());
    REQUIRE(out.kind == Kind::ok);
    CHECK(out.tokens->access_token.reveal() == "second-access");
    CHECK(out.tokens->refresh_token.reveal() == "second-refresh");
  }
}

TEST_CASE("token store: the file has the documented JSON shape") {
  Saved s;
  const std::string& text = s.original;
  for (const char* key :
       {"\"version\": 1", "\"binding\"", "\"client_id\"", "\"tenant\"", "\"authority\"",
        "\"protocol\": \"v2\"", "\"access_token\"", "\"refresh_token\"",
        "\"expires_at\": \"2026-11-26T20:04:05Z\"", "\"obtained_at\": \"2026-11-26T19:04:05Z\"",
        "\"scopes\"", "\"user\"", "\"username\": \"ada@contoso.example\""}) {
    CAPTURE(key);
    CHECK(text.find(key) != std::string::npos);
  }
}

TEST_CASE("token store: files are 0600 in a 0700 folder and no temp file remains") {
  Saved s;
  CHECK(mode_of(s.store.dir()) == 0700);
  CHECK(mode_of(s.store.file_for("kitchen")) == 0600);
  CHECK(mode_of(s.store.lock_for("kitchen")) == 0600);
  CHECK_FALSE(temp_file_left(s.store.dir()));
}

TEST_CASE("token store: prepare creates the folder and its parents 0700") {
  TempDir tmp;
  TokenStore store(tmp.path() / "a" / "b" / "tokens");
  CHECK_FALSE(store.prepare().has_value());
  CHECK(mode_of(tmp.path() / "a") == 0700);
  CHECK(mode_of(tmp.path() / "a" / "b") == 0700);
  CHECK(mode_of(store.dir()) == 0700);
  // A second prepare of a correct folder is silent.
  CHECK_FALSE(store.prepare().has_value());
}

TEST_CASE("token store: prepare tightens a 0755 folder with a warning") {
  TempDir tmp;
  const fs::path dir = tmp.path() / "tokens";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  TokenStore store(dir);
  const auto warning = store.prepare();
  REQUIRE(warning.has_value());
  CHECK(warning->find(dir.string()) != std::string::npos);
  CHECK(warning->find("0755") != std::string::npos);
  CHECK(mode_of(dir) == 0700);
}

TEST_CASE("token store: prepare throws a clear message when the folder cannot be created") {
  TempDir tmp;
  const fs::path file = tmp.path() / "plain-file";
  write_bytes(file, "x");

  SUBCASE("under a regular file") {
    TokenStore store(file / "tokens");
    std::string message;
    try {
      store.prepare();
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(message ==
          "cannot create the storage folder " + (file / "tokens").string() + ": Not a directory");
  }
  SUBCASE("the path is a regular file") {
    TokenStore store(file);
    CHECK_THROWS_WITH_AS(
        store.prepare(),
        ("the storage folder " + file.string() + " exists but is not a folder").c_str(),
        std::runtime_error);
  }
}

TEST_CASE("token store: a missing file loads as none") {
  TempDir tmp;
  TokenStore store(tmp.path());
  const auto r = store.load("kitchen", binding());
  CHECK(r.kind == Kind::none);
  CHECK_FALSE(r.tokens.has_value());
  CHECK_FALSE(store.exists("kitchen"));
  CHECK_FALSE(store.modified("kitchen").has_value());
}

TEST_CASE("token store: a corrupt file loads as corrupt with the reason and the file name") {
  Saved s;
  const fs::path file = s.store.file_for("kitchen");
  const std::string& good = s.original;
  auto without = [&good](const std::string& needle, const std::string& replacement) {
    const auto pos = good.find(needle);
    REQUIRE(pos != std::string::npos);
    return good.substr(0, pos) + replacement + good.substr(pos + needle.size());
  };

  struct Case {
    const char* name;
    std::string content;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"garbage", "\x01\x02 not json " + access_text, "not valid JSON"},
      {"empty", "", "not valid JSON"},
      {"zeros after a power cut", std::string(64, '\0'), "not valid JSON"},
      {"truncated", good.substr(0, good.size() / 2), "not valid JSON"},
      {"trailing garbage", good + "}", "not valid JSON"},
      {"an array", "[\"" + access_text + "\"]", "not a JSON object"},
      {"no version", without("\"version\": 1", "\"v\": 1"), "version"},
      {"a future version", without("\"version\": 1", "\"version\": 2"), "version"},
      {"no binding", without("\"binding\"", "\"b\""), "binding is missing"},
      {"no tenant", without("\"tenant\"", "\"t\""), "binding.tenant"},
      {"no access token", without("\"access_token\"", "\"a\""), "access_token"},
      {"an empty access token", without("\"" + access_text + "\"", "\"\""), "access_token"},
      {"no refresh token", without("\"refresh_token\"", "\"r\""), "refresh_token"},
      {"a numeric refresh token", without("\"" + refresh_text + "\"", "42"), "refresh_token"},
      {"a bad expires_at", without("2026-11-26T20:04:05Z", "next tuesday"), "expires_at"},
      {"a bad obtained_at", without("2026-11-26T19:04:05Z", "2026-13-45T99:00:00Z"), "obtained_at"},
      {"scopes not a list", without("\"scopes\": [", "\"scopes\": 1, \"x\": ["), "scopes"},
      {"a user without username", without("\"username\"", "\"u\""), "user"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    write_bytes(file, c.content);
    TokenStore::LoadResult r;
    REQUIRE_NOTHROW(r = s.store.load("kitchen", binding()));
    CHECK(r.kind == Kind::corrupt);
    CHECK_FALSE(r.tokens.has_value());
    CHECK(r.message.find(file.string()) != std::string::npos);
    CHECK(r.message.find(c.reason) != std::string::npos);
    check_no_secret(r.message);
  }
}

TEST_CASE("token store: a file over 1 MiB is corrupt") {
  Saved s;
  const fs::path file = s.store.file_for("kitchen");
  // Valid JSON padded with whitespace: the size alone must be the reason.
  write_bytes(file, s.original + std::string(TokenStore::max_file_size, ' '));
  const auto r = s.store.load("kitchen", binding());
  CHECK(r.kind == Kind::corrupt);
  CHECK(r.message.find("larger than 1 MiB") != std::string::npos);
  check_no_secret(r.message);
}

TEST_CASE("token store: an unreadable file loads as unreadable") {
  Saved s;
  const fs::path file = s.store.file_for("kitchen");

  SUBCASE("no read permission") {
    if (is_root()) {
      MESSAGE("running as root, where chmod 000 does not stop reads: skipped");
      return;
    }
    REQUIRE(::chmod(file.c_str(), 0) == 0);
    const auto r = s.store.load("kitchen", binding());
    CHECK(r.kind == Kind::unreadable);
    CHECK(r.message.find(file.string()) != std::string::npos);
    CHECK(r.message.find("Permission denied") != std::string::npos);
    check_no_secret(r.message);
  }
  SUBCASE("a folder in place of the file") {
    fs::remove(file);
    fs::create_directory(file);
    const auto r = s.store.load("kitchen", binding());
    CHECK(r.kind == Kind::unreadable);
    CHECK(r.message.find(file.string()) != std::string::npos);
    CHECK(r.message.find("Is a directory") != std::string::npos);
  }
  SUBCASE("a FIFO in place of the file does not block") {
    fs::remove(file);
    REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
    const auto r = s.store.load("kitchen", binding());
    CHECK(r.kind == Kind::unreadable);
    CHECK(r.message.find("not a regular file") != std::string::npos);
  }
}

TEST_CASE("token store: tokens of another binding load as other_binding naming the field") {
  Saved s;
  struct Case {
    const char* field;
    std::string TokenBinding::*member;
  };
  for (const Case c :
       {Case{"client_id", &TokenBinding::client_id}, Case{"tenant", &TokenBinding::tenant},
        Case{"authority", &TokenBinding::authority}, Case{"protocol", &TokenBinding::protocol}}) {
    CAPTURE(c.field);
    TokenBinding other = binding();
    other.*c.member = "something-else";
    TokenStore::LoadResult r;
    REQUIRE_NOTHROW(r = s.store.load("kitchen", other));
    CHECK(r.kind == Kind::other_binding);
    CHECK_FALSE(r.tokens.has_value());
    CHECK(r.message.find(std::string("another ") + c.field) != std::string::npos);
    CHECK(r.message.find("something-else") != std::string::npos);
    CHECK(r.message.find(s.store.file_for("kitchen").string()) != std::string::npos);
    check_no_secret(r.message);
  }
}

namespace {
// The writer port with one system call made to fail (as a full disk or a sick file system
// would), counting the calls that reach it.
struct FailingWriter : g2m::posix::FileWriter {
  enum class Fail { nothing, write, fsync, rename, sync_dir, unlink } fail = Fail::nothing;
  int err = ENOSPC;
  int writes = 0;
  bool write_all(int fd, std::string_view bytes) override {
    ++writes;
    if (fail == Fail::write) {
      errno = err;
      return false;
    }
    return FileWriter::write_all(fd, bytes);
  }
  int fsync(int fd) override { return fail == Fail::fsync ? refuse() : FileWriter::fsync(fd); }
  int rename(const char* from, const char* to) override {
    return fail == Fail::rename ? refuse() : FileWriter::rename(from, to);
  }
  int sync_dir(const char* dir) override {
    return fail == Fail::sync_dir ? refuse() : FileWriter::sync_dir(dir);
  }
  int unlink(const char* path) override {
    // Only the token file's removal fails: save() unlinks stale temp files too.
    if (fail == Fail::unlink && std::string_view(path).find(".tmp-") == std::string_view::npos) {
      return refuse();
    }
    return FileWriter::unlink(path);
  }
  int refuse() {
    errno = err;
    return -1;
  }
};

// A store over a FailingWriter in <tmp>/tokens holding one good file for "kitchen".
struct SavedWithWriter {
  TempDir tmp;
  FailingWriter writer;
  TokenStore store{tmp.path() / "tokens", writer};
  std::string original;
  SavedWithWriter() {
    store.prepare();
    REQUIRE(store.save("kitchen", binding(), tokens()).ok);
    original = read_bytes(store.file_for("kitchen"));
  }
};
}  // namespace

TEST_CASE("token store: a failed write leaves the previous file intact") {
  SavedWithWriter s;
  TokenSet newer = tokens();
  newer.access_token = g2m::Secret("NEWER-ACCESS");
  for (const auto fail : {FailingWriter::Fail::write, FailingWriter::Fail::fsync}) {
    CAPTURE(static_cast<int>(fail));
    s.writer.fail = fail;
    const auto r = s.store.save("kitchen", binding(), newer);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.busy);
    CHECK(r.message == "cannot write the token file " + s.store.file_for("kitchen").string() +
                           ": No space left on device");
    check_no_secret(r.message);
    CHECK(r.message.find("NEWER-ACCESS") == std::string::npos);
    CHECK(read_bytes(s.store.file_for("kitchen")) == s.original);
    CHECK_FALSE(temp_file_left(s.store.dir()));
  }

  // Once the fault clears, the same store writes again (the lock was released).
  s.writer.fail = FailingWriter::Fail::nothing;
  CHECK(s.store.save("kitchen", binding(), newer).ok);
  CHECK(s.store.load("kitchen", binding()).tokens->access_token.reveal() == "NEWER-ACCESS");
}

TEST_CASE("token store: a failed rename or folder sync through the writer port is reported") {
  SavedWithWriter s;
  s.writer.fail = FailingWriter::Fail::rename;
  s.writer.err = EIO;
  auto r = s.store.save("kitchen", binding(), tokens());
  CHECK_FALSE(r.ok);
  CHECK(r.message == "cannot replace the token file " + s.store.file_for("kitchen").string() +
                         ": Input/output error");
  CHECK(read_bytes(s.store.file_for("kitchen")) == s.original);
  CHECK_FALSE(temp_file_left(s.store.dir()));

  // After the rename: the file is new, but the caller hears it may not survive a power cut.
  s.writer.fail = FailingWriter::Fail::sync_dir;
  TokenSet newer = tokens();
  newer.access_token = g2m::Secret("AFTER-RENAME");
  r = s.store.save("kitchen", binding(), newer);
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("cannot sync the storage folder") != std::string::npos);
  check_no_secret(r.message);
  s.writer.fail = FailingWriter::Fail::nothing;
  CHECK(s.store.load("kitchen", binding()).tokens->access_token.reveal() == "AFTER-RENAME");

  s.writer.fail = FailingWriter::Fail::unlink;
  r = s.store.remove("kitchen");
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("Input/output error") != std::string::npos);
  CHECK(fs::exists(s.store.file_for("kitchen")));
}

TEST_CASE("token store: a write that cannot create its temp file keeps the previous file") {
  Saved s;
  const fs::path dir = s.store.dir();
  std::string expected_reason;
  if (is_root()) {
    // Root ignores a read-only folder; a folder squatting on the temp file's name fails the
    // same open() call.
    MESSAGE("running as root: a folder at the temp path stands in for a read-only folder");
    fs::create_directory(dir / (".kitchen.json.tmp-" + std::to_string(::getpid())));
    expected_reason = "File exists";
  } else {
    REQUIRE(::chmod(dir.c_str(), 0500) == 0);
    expected_reason = "Permission denied";
  }
  const auto r = s.store.save("kitchen", binding(), tokens());
  CHECK_FALSE(r.ok);
  CHECK(r.message.find(s.store.file_for("kitchen").string()) != std::string::npos);
  CHECK(r.message.find(expected_reason) != std::string::npos);
  check_no_secret(r.message);
  ::chmod(dir.c_str(), 0700);
  CHECK(read_bytes(s.store.file_for("kitchen")) == s.original);
}

TEST_CASE("token store: a failed rename fails the write") {
  TempDir tmp;
  TokenStore store(tmp.path() / "tokens");
  store.prepare();
  // rename() cannot replace a non-empty folder, whoever we run as.
  const fs::path target = store.file_for("kitchen");
  fs::create_directory(target);
  write_bytes(target / "keep", "keep");
  const auto r = store.save("kitchen", binding(), tokens());
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("cannot replace the token file " + target.string()) != std::string::npos);
  check_no_secret(r.message);
  CHECK(read_bytes(target / "keep") == "keep");
  CHECK_FALSE(temp_file_left(store.dir()));
}

TEST_CASE("token store: a temp file left by an earlier process with our pid does not block") {
  Saved s;
  const fs::path stale = s.store.dir() / (".kitchen.json.tmp-" + std::to_string(::getpid()));
  write_bytes(stale, "half a file");
  TokenSet newer = tokens();
  newer.access_token = g2m::Secret("AFTER-CRASH");
  REQUIRE(s.store.save("kitchen", binding(), newer).ok);
  CHECK(s.store.load("kitchen", binding()).tokens->access_token.reveal() == "AFTER-CRASH");
  CHECK_FALSE(fs::exists(stale));
}

TEST_CASE("token store: remove deletes the file and a missing file is ok") {
  Saved s;
  CHECK(s.store.exists("kitchen"));
  CHECK(s.store.modified("kitchen").has_value());
  CHECK(s.store.remove("kitchen").ok);
  CHECK_FALSE(s.store.exists("kitchen"));
  CHECK_FALSE(fs::exists(s.store.file_for("kitchen")));
  CHECK(s.store.load("kitchen", binding()).kind == Kind::none);
  CHECK(s.store.remove("kitchen").ok);
  CHECK(s.store.remove("never-saved").ok);
}

TEST_CASE("token store: a failed remove is reported") {
  Saved s;
  const fs::path target = s.store.file_for("hall");
  fs::create_directory(target);
  write_bytes(target / "keep", "keep");
  const auto r = s.store.remove("hall");
  CHECK_FALSE(r.ok);
  CHECK(r.message.find(target.string()) != std::string::npos);
  CHECK(fs::exists(target / "keep"));
}

TEST_CASE("token store: account names outside [A-Za-z0-9_-]{1,64} are refused") {
  Saved s;
  const fs::path outside = s.tmp.path() / "escaped.json";
  for (const std::string& bad :
       {std::string(), std::string("../escaped"), std::string("a/b"), std::string("a.b"),
        std::string("a b"), std::string(65, 'a'), std::string("k\xc3\xbc")}) {
    CAPTURE(bad);
    const auto w = s.store.save(bad, binding(), tokens());
    CHECK_FALSE(w.ok);
    CHECK(w.message.find("not a valid account name") != std::string::npos);
    check_no_secret(w.message);
    CHECK(s.store.load(bad, binding()).kind == Kind::unreadable);
    CHECK_FALSE(s.store.remove(bad).ok);
    CHECK_FALSE(s.store.exists(bad));
    CHECK_FALSE(s.store.modified(bad).has_value());
  }
  CHECK_FALSE(fs::exists(outside));
  CHECK(TokenStore::valid_account(std::string(64, 'Z')));
  CHECK(TokenStore::valid_account("kitchen_2-b"));
  CHECK(s.store.exists("kitchen"));
}

TEST_CASE("token store: a lock held by another process makes save and remove busy at once") {
  Saved s;
  // flock() locks belong to an open file description, so this descriptor conflicts with the
  // store's own open of the same file exactly as `graph2mqtt login` would.
  const int holder =
      ::open(s.store.lock_for("kitchen").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(holder >= 0);
  REQUIRE(::flock(holder, LOCK_EX) == 0);

  TokenSet newer = tokens();
  newer.access_token = g2m::Secret("WHILE-LOCKED");
  // Returns instead of waiting: were it to block, this test would hang here.
  auto r = s.store.save("kitchen", binding(), newer);
  CHECK_FALSE(r.ok);
  CHECK(r.busy);
  CHECK(r.message.find("held by another process") != std::string::npos);
  CHECK(r.message.find(s.store.lock_for("kitchen").string()) != std::string::npos);
  check_no_secret(r.message);
  CHECK(read_bytes(s.store.file_for("kitchen")) == s.original);
  CHECK_FALSE(temp_file_left(s.store.dir()));

  r = s.store.remove("kitchen");
  CHECK_FALSE(r.ok);
  CHECK(r.busy);
  CHECK(fs::exists(s.store.file_for("kitchen")));

  // save_waiting (for `graph2mqtt login`) gives up after its wait, still busy.
  r = s.store.save_waiting("kitchen", binding(), newer, std::chrono::milliseconds(0));
  CHECK(r.busy);

  // Once the other process lets go, the next try goes through.
  ::close(holder);
  r = s.store.save("kitchen", binding(), newer);
  CHECK(r.ok);
  CHECK_FALSE(r.busy);
  CHECK(s.store.load("kitchen", binding()).tokens->access_token.reveal() == "WHILE-LOCKED");
}

TEST_CASE("token store: save_waiting writes once the lock is released") {
  Saved s;
  const int holder =
      ::open(s.store.lock_for("kitchen").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(holder >= 0);
  REQUIRE(::flock(holder, LOCK_EX) == 0);
  TokenStore::WriteResult result{false, "not run", false};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    result = s.store.save_waiting("kitchen", binding(), tokens(), std::chrono::seconds(60));
    done = true;
  });
  // The writer is retrying (not finished) while the lock is held...
  CHECK_FALSE(done.load());
  ::close(holder);
  writer.join();
  // ... and succeeds after it is released, well before its 60 s.
  CHECK(result.ok);
}

TEST_CASE("token store: a symbolic link in place of the lock file is refused, not followed") {
  Saved s;
  const fs::path lock = s.store.lock_for("kitchen");
  const fs::path elsewhere = s.tmp.path() / "elsewhere";
  fs::remove(lock);
  fs::create_symlink(elsewhere, lock);
  const auto r = s.store.save("kitchen", binding(), tokens());
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.busy);
  CHECK(r.message.find("symbolic link") != std::string::npos);
  CHECK_FALSE(fs::exists(elsewhere));  // never created through the link
  CHECK_FALSE(s.store.remove("kitchen").ok);
}

TEST_CASE("token store: a token file open to group or others is corrupt and never loaded") {
  Saved s;
  const fs::path file = s.store.file_for("kitchen");
  for (const unsigned mode : {0640u, 0604u, 0620u, 0602u, 0644u, 0666u, 0610u}) {
    CAPTURE(mode);
    REQUIRE(::chmod(file.c_str(), mode) == 0);
    const auto r = s.store.load("kitchen", binding());
    CHECK(r.kind == Kind::corrupt);
    CHECK_FALSE(r.tokens.has_value());
    CHECK(r.message.find(file.string()) != std::string::npos);
    CHECK(r.message.find("readable or writable by group or others") != std::string::npos);
    CHECK(r.message.find("planted") != std::string::npos);
    check_no_secret(r.message);
  }
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  CHECK(s.store.load("kitchen", binding()).kind == Kind::ok);
  REQUIRE(::chmod(file.c_str(), 0400) == 0);  // tighter than 0600 is fine
  CHECK(s.store.load("kitchen", binding()).kind == Kind::ok);
}

TEST_CASE("token store: a token file or folder owned by another user is refused") {
  if (!is_root()) {
    MESSAGE("only root can give a file to another user: skipped");
    return;
  }
  Saved s;
  const fs::path file = s.store.file_for("kitchen");
  REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
  const auto r = s.store.load("kitchen", binding());
  CHECK(r.kind == Kind::corrupt);
  CHECK_FALSE(r.tokens.has_value());
  CHECK(r.message.find("owned by uid 65534, not by the agent's user") != std::string::npos);
  check_no_secret(r.message);

  REQUIRE(::chown(s.store.dir().c_str(), 65534, 65534) == 0);
  CHECK_THROWS_WITH_AS(s.store.prepare(),
                       doctest::Contains("is owned by uid 65534, not by the agent's user"),
                       std::runtime_error);
}

TEST_CASE("token store: a token file nested deeper than 256 levels is corrupt") {
  Saved s;
  const fs::path file = s.store.file_for("kitchen");
  for (const std::string& content :
       {std::string(200000, '['), "{\"version\": 1, \"x\": " + std::string(300, '[')}) {
    write_bytes(file, content);
    const auto r = s.store.load("kitchen", binding());
    CHECK(r.kind == Kind::corrupt);
    CHECK(r.message.find("nested deeper than 256 levels") != std::string::npos);
  }
}
