// Helpers on top of Scenario for the sign-in, token and terminal-login tests: what a display
// sees (events in order, cleared topics), what the simulator saw (codes, counters) and what
// the agent left on disk (token file, permissions).
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/time_format.h"
#include "scenario.h"

namespace g2m::test {

// --- time ---------------------------------------------------------------------------------------

// "2026-11-26T19:04:05Z" as seconds since the epoch, nullopt when it is not that shape.
inline std::optional<std::time_t> parse_utc(const std::string& text) {
  if (text.size() != 20 || text[4] != '-' || text[10] != 'T' || text[19] != 'Z') {
    return std::nullopt;
  }
  // The agent's own parser (strptime + timegm): std::get_time misreads "%SZ" in some builds.
  const auto t = g2m::parse_utc(text);
  if (!t) return std::nullopt;
  return std::chrono::system_clock::to_time_t(*t);
}

inline std::time_t now_utc() {
  return std::time(nullptr);
}

inline double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// --- what the display saw

// Waits for the agent's first auth/state of `account` (published after its empty auth/code and
// graph/R at start), so a mark() taken afterwards sees only what the test causes.
inline void wait_started(Scenario& s, const std::string& account = "kitchen") {
  s.display.wait_for_json(
      s.topic(account, "auth/state"), [](const rapidjson::Value& v) { return v.IsObject(); }, 10s);
}
// -------------------------------------------------------------------------

// The `event` names published on B/A/events with index >= since, in order (after a sync, so
// everything the agent published before now is included).
inline std::vector<std::string> events_since(Scenario& s, const std::string& account,
                                             std::size_t since) {
  s.display.sync();
  std::vector<std::string> out;
  for (const auto& m : s.display.messages(s.topic(account, "events"))) {
    if (m.index >= since) out.push_back(json_str(m.json(), "event"));
  }
  return out;
}

inline bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Every message on `filter` with index >= since (after a sync).
inline std::vector<Message> messages_since(Scenario& s, const std::string& filter,
                                           std::size_t since) {
  s.display.sync();
  std::vector<Message> out;
  for (auto& m : s.display.messages(filter)) {
    if (m.index >= since) out.push_back(std::move(m));
  }
  return out;
}

// The next empty (cleared) payload on `topic` after `since`.
inline Message wait_cleared(Scenario& s, const std::string& topic, std::size_t since,
                            std::chrono::milliseconds timeout = 10s) {
  return s.display.wait_for(
      topic, [](const Message& m) { return m.payload.empty(); }, timeout, since);
}

// The next JSON object on `topic` after `since`.
inline Message wait_object(Scenario& s, const std::string& topic, std::size_t since,
                           std::chrono::milliseconds timeout = 10s) {
  return s.display.wait_for_json(
      topic, [](const rapidjson::Value& v) { return v.IsObject(); }, timeout, since);
}

// The `status` command's auth state object of `account`.
inline rapidjson::Document status_of(Scenario& s, const std::string& account = "kitchen") {
  auto reply = s.display.request("status", R"({"account":")" + account + R"("})");
  REQUIRE(json_str(reply, "status") == "ok");
  rapidjson::Document data;
  data.CopyFrom(reply["data"], data.GetAllocator());
  return data;
}

// The retained auth/state a display connecting now would get.
inline rapidjson::Document retained_state(Scenario& s, const std::string& account = "kitchen") {
  auto value = s.display.retained_value(s.topic(account, "auth/state"));
  REQUIRE(value.has_value());
  return parse_json(*value);
}

// The graph/R topics of the kitchen account (scenario.h's kitchen_account).
inline const std::vector<std::string>& kitchen_resources() {
  static const std::vector<std::string> names{"me", "presence"};
  return names;
}

// Waits until every resource of the account has been published (a JSON object) after `since`.
inline void wait_resources(Scenario& s, std::size_t since, const std::string& account = "kitchen") {
  for (const auto& r : kitchen_resources()) wait_object(s, s.topic(account, "graph/" + r), since);
}

// No payload ever holds a secret.
inline void check_no_secrets(Scenario& s) {
  s.display.sync();
  for (const auto& m : s.display.messages()) {
    CHECK_MESSAGE(m.payload.find("access_token") == std::string::npos, m.describe());
    CHECK_MESSAGE(m.payload.find("refresh_token") == std::string::npos, m.describe());
    // The key of the secret; `"method":"device_code"` names the method and is no secret.
    CHECK_MESSAGE(m.payload.find("\"device_code\":") == std::string::npos, m.describe());
    CHECK_MESSAGE(m.payload.find("id_token") == std::string::npos, m.describe());
  }
}

// --- what the simulator saw ---------------------------------------------------------------------

struct SimCode {
  std::string user_code;
  std::string state;
  long polls = 0;
  long interval = 0;
  bool v1 = false;
};

inline std::vector<SimCode> sim_codes(Simulator& sim) {
  const auto reply = sim.get("/_sim/codes");
  REQUIRE(reply.status == 200);
  const auto doc = parse_json(reply.body);
  std::vector<SimCode> out;
  for (const auto& c : doc["codes"].GetArray()) {
    SimCode code;
    code.user_code = json_str(c, "user_code");
    code.state = json_str(c, "state");
    if (c.HasMember("polls") && c["polls"].IsInt64()) code.polls = c["polls"].GetInt64();
    if (c.HasMember("interval") && c["interval"].IsInt64())
      code.interval = c["interval"].GetInt64();
    code.v1 = c.HasMember("v1") && c["v1"].IsBool() && c["v1"].GetBool();
    out.push_back(code);
  }
  return out;
}

// The polls the simulator counted for `user_code` (0 when it does not know the code).
inline long sim_polls(Simulator& sim, const std::string& user_code) {
  for (const auto& c : sim_codes(sim)) {
    if (c.user_code == user_code) return c.polls;
  }
  return 0;
}

// A counter of /_sim/counters that SimulatorCounters has no field for ("unauthorized_graph").
inline long sim_counter(Simulator& sim, const char* key) {
  const auto doc = parse_json(sim.counters().json);
  if (!doc.HasMember(key) || !doc[key].IsInt64()) return -1;
  return static_cast<long>(doc[key].GetInt64());
}

// --- what the agent left on disk
// ------------------------------------------------------------------

// The token files in the agent's storage folder: regular files that are neither the lock file
// beside a token file nor a hidden temporary file.
inline std::vector<std::filesystem::path> token_files(const Agent& agent) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(agent.storage_dir(), ec)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.ends_with(".lock") || name.starts_with(".")) continue;
    out.push_back(entry.path());
  }
  return out;
}

inline bool has_token_file(const Agent& agent) {
  return !token_files(agent).empty();
}

inline std::filesystem::path the_token_file(const Agent& agent) {
  const auto files = token_files(agent);
  const std::string why = "expected exactly one token file in " + agent.storage_dir().string();
  REQUIRE_MESSAGE(files.size() == 1, why);
  return files.front();
}

// The permission bits (e.g. 0600) of a file or folder.
inline unsigned mode_of(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode) & 07777U;
}

// --- whole steps
// ----------------------------------------------------------------------------------

// Signs in over MQTT, then restarts the agent so it comes back signed in from the token file:
// an agent that is signed in and has started no login yet (so its 10 s login window is open).
inline void sign_in_and_restart(Scenario& s, const std::string& account = "kitchen") {
  s.sign_in(account);
  REQUIRE(s.agent->stop() == 0);
  const auto since = s.display.mark();
  s.agent->start();
  s.wait_online(since);
  s.wait_state(account, "signed_in", since);
}

// Runs `graph2mqtt ARGS...` with the agent's config to its end and returns its exit status, or
// -1 (and a failed check quoting its output) when it is still running after `timeout`.
inline int run_to_exit(Scenario& s, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = 20s, std::string* output = nullptr) {
  auto process = s.agent->run(args);
  const auto status = process.wait_exit(timeout);
  if (output != nullptr) *output = process.log_text();
  if (!status) {
    FAIL_CHECK("still running after " << timeout.count() << " ms: " << process.command_line()
                                      << "\n"
                                      << process.log_text());
    return -1;
  }
  return *status;
}

}  // namespace g2m::test
