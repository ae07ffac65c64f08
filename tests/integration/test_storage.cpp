// Storage failures (docs/mqtt-api.md "Tokens", §2 logout): a token folder that refuses writes.
// Tests run as root, which file modes do not stop, so the folder is made immutable with chattr.
#include <doctest/doctest.h>

#include <sys/mount.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "scenario_extra.h"

using namespace g2m::test;

namespace {
// chattr +i/-i; false when the file system or the machine does not allow it.
bool set_immutable(const std::filesystem::path& dir, bool on) {
  const std::string cmd =
      std::string("chattr ") + (on ? "+i " : "-i ") + "'" + dir.string() + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

struct ImmutableGuard {
  std::filesystem::path dir;
  ~ImmutableGuard() { set_immutable(dir, false); }
  // Makes `dir` immutable; false (with a message: the test is skipped) where chattr cannot.
  bool engage() {
    if (set_immutable(dir, true)) return true;
    MESSAGE("chattr +i is not available here; skipped");
    return false;
  }
};

// A tiny tmpfs mounted over a folder for the length of a test: a disk that really fills up.
struct TinyDisk {
  explicit TinyDisk(std::filesystem::path where) : dir(std::move(where)) {
    mounted = ::mount("g2m-tiny", dir.c_str(), "tmpfs", 0, "size=256k,mode=0700") == 0;
    if (!mounted) why = std::strerror(errno);
  }
  ~TinyDisk() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  // Writes a filler file until the disk says it is full.
  void fill() {
    std::ofstream out(dir / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) {
    }
  }
  void free_space() { std::filesystem::remove(dir / "filler"); }
  std::filesystem::path dir;
  bool mounted = false;
  std::string why{};
};
}  // namespace

TEST_CASE(
    "storage: a token file that cannot be written keeps the tokens and says storage_error until a "
    "retry succeeds" *
    doctest::test_suite("faults")) {
  Scenario s;
  s.sign_in();
  const auto file = s.agent->storage_dir() / "kitchen.json";
  REQUIRE(std::filesystem::exists(file));
  const std::string before = read_file(file);
  ImmutableGuard guard{s.agent->storage_dir()};
  if (!guard.engage()) return;
  const auto since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");  // the refresh itself worked
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "error") == "storage_error");
  CHECK(error["retry_in"].IsInt());
  CHECK(json_str(error, "description").find("kitchen") != std::string::npos);
  // Still signed in with the new tokens in memory; the old file is intact.
  auto status = s.display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_in");
  CHECK(read_file(file) == before);
  // Once the disk takes writes again, the retry stores the new tokens.
  set_immutable(guard.dir, false);
  CHECK(poll_until([&] { return read_file(file) != before && !read_file(file).empty(); }, 20s));
  CHECK(s.simulator.counters().rotated_token_reuse == 0);
}

TEST_CASE(
    "storage: tokens not yet stored survive a reload that restarts the account, and are stored "
    "later" *
    doctest::test_suite("faults")) {
  Scenario s;
  s.sign_in();
  const auto file = s.agent->storage_dir() / "kitchen.json";
  const std::string before = read_file(file);
  ImmutableGuard guard{s.agent->storage_dir()};
  if (!guard.engage()) return;
  const auto since = s.display.mark();
  CHECK(json_str(s.display.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  CHECK(json_str(s.wait_event("kitchen", "auth_error", since).json(), "error") == "storage_error");
  // The rotated refresh token is only in memory. A changed setting restarts the account.
  auto changed = s.config;
  changed.accounts = kitchen_account("  renew_code: true\n");
  s.agent->write_config(changed);
  const auto reloaded = s.display.mark();
  s.agent->process().terminate(SIGHUP);
  REQUIRE(poll_until([&] { return s.agent->log_text().find("restarting it") != std::string::npos; },
                     15s));
  REQUIRE(poll_until(
      [&] { return s.agent->log_text().find("could not store yet") != std::string::npos; }, 15s));
  CHECK(json_str(retained_state(s), "state") == "signed_in");
  CHECK(read_file(file) == before);
  // Once the disk takes writes again, the successor stores them; a refresh then uses the rotated
  // token (the file's old one would be a reuse, which the platform punishes).
  set_immutable(guard.dir, false);
  CHECK(poll_until([&] { return read_file(file) != before && !read_file(file).empty(); }, 20s));
  const auto again = s.display.mark();
  CHECK(json_str(s.display.request("refresh", R"({"account":"kitchen"})"), "status") == "ok");
  s.wait_event("kitchen", "token_refreshed", again);
  CHECK(s.simulator.counters().rotated_token_reuse == 0);
  CHECK_FALSE(contains(events_since(s, "kitchen", reloaded), "signed_out"));
}

TEST_CASE(
    "storage: logout when the token file cannot be deleted replies with an error and still signs "
    "out" *
    doctest::test_suite("faults")) {
  Scenario s;
  s.sign_in();
  ImmutableGuard guard{s.agent->storage_dir()};
  if (!guard.engage()) return;
  const auto since = s.display.mark();
  auto reply = s.display.request("logout", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK(json_str(reply, "error").find("could not be deleted") != std::string::npos);
  auto state = s.wait_state("kitchen", "signed_out", since).json();
  CHECK(json_str(state, "reason") == "logout");
  s.display.wait_for(
      "graph2mqtt/kitchen/graph/presence", [](const Message& m) { return m.payload.empty(); }, 10s,
      since);
  // The file logout could not delete is never loaded again by this run: the token-file watcher
  // (which picks up a new file within 2 s) must not sign the account back in.
  CHECK_FALSE(
      poll_until([&] { return json_str(retained_state(s), "state") != "signed_out"; }, 3500ms));
  CHECK_FALSE(contains(events_since(s, "kitchen", since), "signed_in"));
}

TEST_CASE("storage: a token file deleted while running is written again at the next refresh" *
          doctest::test_suite("faults")) {
  Scenario s;
  s.sign_in();
  const auto file = s.agent->storage_dir() / "kitchen.json";
  REQUIRE(std::filesystem::exists(file));
  std::filesystem::remove(file);
  // The tokens in memory keep the account signed in.
  auto status = s.display.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_in");
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  CHECK(poll_until([&] { return std::filesystem::exists(file); }, 10s));
  CHECK_FALSE(try_parse_json(read_file(file)).HasParseError());
}

TEST_CASE(
    "storage: a full disk keeps the previous token file and the new tokens until they can be "
    "stored" *
    doctest::test_suite("faults")) {
  Scenario s;
  s.agent->stop();
  TinyDisk disk(s.agent->storage_dir());
  if (!disk.mounted) {
    // The TokenStore's writer port (a FileWriter that fails) covers this case in the unit tests.
    MESSAGE("cannot mount a tmpfs here (" << disk.why << "); skipped");
    return;
  }
  auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  s.sign_in();
  const auto file = s.agent->storage_dir() / "kitchen.json";
  const std::string before = read_file(file);
  REQUIRE_FALSE(before.empty());

  disk.fill();
  since = s.display.mark();
  auto reply = s.display.request("refresh", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "error") == "storage_error");
  CHECK_MESSAGE(json_str(error, "description").find("No space left on device") != std::string::npos,
                to_json(error));
  CHECK(error["retry_in"].IsInt());
  // The previous file is whole and untouched, no temporary file is left behind, and the
  // account stays signed in with the new tokens in memory.
  CHECK(read_file(file) == before);
  for (const auto& entry : std::filesystem::directory_iterator(s.agent->storage_dir())) {
    const auto name = entry.path().filename().string();
    CHECK_MESSAGE((name == "kitchen.json" || name == "filler" || name.ends_with(".lock")),
                  "left behind: " << name);
  }
  CHECK(json_str(s.display.request("status", R"({"account":"kitchen"})")["data"], "state") ==
        "signed_in");
  // Graph keeps working meanwhile.
  CHECK(json_str(s.display.request("refresh", R"({"account":"kitchen","resource":"me"})"),
                 "status") == "ok");

  disk.free_space();
  CHECK(poll_until(
      [&] {
        const auto text = read_file(file);
        return text != before && !try_parse_json(text).HasParseError();
      },
      20s));
  CHECK(s.simulator.counters().rotated_token_reuse == 0);
  // The stored tokens are the new ones: a restart is signed in from them.
  since = s.display.mark();
  s.agent->stop();
  s.agent->start();
  s.wait_state("kitchen", "signed_in", since);
}
