// `graph2mqtt login` run as root (sudo on a gateway) becomes the owner of storage.dir before it
// touches a file, so that the service, which runs as that user, can read the tokens; when it
// cannot, it refuses and names the command to run instead.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "scenario_extra.h"

using namespace g2m::test;

namespace {

constexpr uid_t kNobody = 65534;  // Debian's `nobody`, group `nogroup`

struct Owner {
  uid_t uid;
  gid_t gid;
};
Owner owner_of(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return {st.st_uid, st.st_gid};
}

// The agent stopped (the terminal alone with the identity platform), and the folders above the
// tokens passable for another user: the test's temporary folders are root's, 0700.
void prepare(Scenario& s) {
  wait_started(s);
  REQUIRE(s.agent->stop() == 0);
  for (const auto& dir : {s.tmp.path(), s.pki.dir, s.agent->dir()}) {
    REQUIRE(::chmod(dir.c_str(), 0711) == 0);
  }
  REQUIRE(::chmod(s.pki.ca.c_str(), 0644) == 0);
}

std::string login_command(Scenario& s) {
  return std::string(G2M_AGENT_BIN) + " login kitchen --config " + s.agent->config_path().string();
}

ScenarioOptions auto_approving() {
  ScenarioOptions options;
  options.simulator_args = {"--interval", "1", "--auto-approve-after", "1"};
  return options;
}

}  // namespace

TEST_CASE("login as root: switches to the owner of storage.dir, whose token file it leaves" *
          doctest::skip(::geteuid() != 0)) {
  Scenario s(auto_approving());
  prepare(s);
  const auto storage = s.agent->storage_dir();
  REQUIRE(::chown(storage.c_str(), kNobody, kNobody) == 0);

  std::string output;
  CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 0);
  CHECK_MESSAGE(output.find("running as nobody") != std::string::npos, output);
  const auto file = the_token_file(*s.agent);
  CHECK(owner_of(file).uid == kNobody);
  CHECK(owner_of(file).gid == kNobody);
  CHECK(mode_of(file) == 0600U);
  // Nothing in the folder is root's (the lock file beside the tokens included).
  for (const auto& entry : std::filesystem::directory_iterator(storage)) {
    CHECK_MESSAGE(owner_of(entry.path()).uid == kNobody, entry.path().string());
  }
  // The service runs as the folder's owner and uses them. Here the agent runs as root, which
  // refuses token files of another owner (they may have been planted): hand the folder to root
  // as the service's user, then the agent signs in from what `login` wrote.
  for (const auto& entry : std::filesystem::directory_iterator(storage)) {
    REQUIRE(::chown(entry.path().c_str(), 0, 0) == 0);
  }
  REQUIRE(::chown(storage.c_str(), 0, 0) == 0);
  s.agent->start();
  s.display.wait_for_json(s.topic("kitchen", "auth/state"), [](const rapidjson::Value& v) {
    return json_str(v, "state") == "signed_in";
  });
}

TEST_CASE("login as root: refuses with the exact command when it cannot be the folder's owner" *
          doctest::skip(::geteuid() != 0)) {
  Scenario s(auto_approving());
  prepare(s);
  const auto storage = s.agent->storage_dir();

  SUBCASE("storage.dir is missing: it would be created as root's") {
    std::filesystem::remove_all(storage);
    std::string output;
    CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 1);
    CHECK_MESSAGE(
        output.find("\n  sudo -u graph2mqtt " + login_command(s) + "\n") != std::string::npos,
        output);
    CHECK_FALSE(std::filesystem::exists(storage));
  }
  SUBCASE("its owner has no user entry") {
    REQUIRE(::chown(storage.c_str(), 54321, 54321) == 0);
    std::string output;
    CHECK(run_to_exit(s, {"login", "kitchen"}, 20s, &output) == 1);
    CHECK_MESSAGE(
        output.find("\n  sudo -u '#54321' " + login_command(s) + "\n") != std::string::npos,
        output);
    CHECK(token_files(*s.agent).empty());
  }
  CHECK(s.simulator.counters().devicecode == 0);
}
