// Storage failures (CONTRACT §6 Tokens, §2 logout): a token folder that refuses writes. Tests run
// as root, which file modes do not stop, so the folder is made immutable with chattr.
#include <doctest/doctest.h>

#include <cstdlib>

#include "scenario.h"

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
};
}  // namespace

TEST_CASE(
    "storage: a token file that cannot be written keeps the tokens, says storage_error, and is "
    "retried") {
  Scenario s;
  s.sign_in();
  const auto file = s.agent->storage_dir() / "kitchen.json";
  REQUIRE(std::filesystem::exists(file));
  const std::string before = read_file(file);
  ImmutableGuard guard{s.agent->storage_dir()};
  if (!set_immutable(guard.dir, true)) {
    MESSAGE("chattr +i is not available here; skipped");
    return;
  }
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
    "storage: logout when the token file cannot be deleted replies with an error and still signs "
    "out") {
  Scenario s;
  s.sign_in();
  ImmutableGuard guard{s.agent->storage_dir()};
  if (!set_immutable(guard.dir, true)) {
    MESSAGE("chattr +i is not available here; skipped");
    return;
  }
  const auto since = s.display.mark();
  auto reply = s.display.request("logout", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK(json_str(reply, "error").find("could not be deleted") != std::string::npos);
  auto state = s.wait_state("kitchen", "signed_out", since).json();
  CHECK(json_str(state, "reason") == "logout");
  s.display.wait_for(
      "graph2mqtt/kitchen/graph/presence", [](const Message& m) { return m.payload.empty(); }, 10s,
      since);
}

TEST_CASE("storage: a token file deleted while running is written again at the next refresh") {
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
