// Helpers for the tests of the MQTT command contract (docs/mqtt-api.md "Commands"): raw requests
// whose reply is the next message on the fixed response topic, replies matched by transaction,
// snapshots of the retained state, and ISO 8601 timestamps.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scenario.h"

namespace g2m::test {

inline constexpr const char* kHallClientId = "00000000-0000-0000-0000-000000000002";

// A second account without resources or graph_allow.
inline std::string hall_account() {
  return std::string("hall:\n") + "  client_id: " + kHallClientId + "\n";
}

inline std::string request_topic(const Scenario& s, const std::string& action) {
  return s.base + "/bridge/request/" + action;
}
inline std::string response_topic(const Scenario& s, const std::string& action) {
  return s.base + "/bridge/response/" + action;
}

// Publishes `payload` as it is (any bytes) to B/bridge/request/<action> and returns the next
// message on B/bridge/response/<action>. Only for one request at a time: the reply is not matched
// by transaction, so a request without one (or with a null one) can be checked too.
inline Message raw_request(Scenario& s, const std::string& action, const std::string& payload,
                           std::chrono::milliseconds timeout = 10s) {
  const auto since = s.display.mark();
  s.display.publish(request_topic(s, action), payload);
  return s.display.wait_for(response_topic(s, action), {}, timeout, since);
}

// The reply on B/bridge/response/<action> (after `since`) whose transaction is `transaction_json`
// (compact JSON text, e.g. "\"t-1\"" or "7").
inline Message wait_reply(Scenario& s, const std::string& action,
                          const std::string& transaction_json, std::size_t since,
                          std::chrono::milliseconds timeout = 10s) {
  return s.display.wait_for(
      response_topic(s, action),
      [&](const Message& m) {
        const auto json = try_parse_json(m.payload);
        return !json.HasParseError() && json.IsObject() && json.HasMember("transaction") &&
               to_json(json["transaction"]) == transaction_json;
      },
      timeout, since);
}

// The retained state a new subscriber to B/# would get now, as (topic, payload) pairs in topic
// order (request topics excluded: they are the tests' own).
inline std::vector<std::pair<std::string, std::string>> retained_snapshot(const Scenario& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : s.display.fetch_retained(s.base + "/#")) {
    if (m.topic.rfind(s.base + "/bridge/request/", 0) == 0) continue;
    out.emplace_back(m.topic, m.payload);
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string describe(const std::vector<std::pair<std::string, std::string>>& snapshot) {
  std::string out;
  for (const auto& [topic, payload] : snapshot) out += "  " + topic + " = " + payload + "\n";
  return out;
}

// True when reply `r` is {"status":"ok","data":{...}} with the given transaction (nullopt: none).
inline bool is_ok_reply(const rapidjson::Value& r) {
  return r.IsObject() && json_str(r, "status") == "ok" && r.HasMember("data") &&
         r["data"].IsObject() && !r.HasMember("error") && !r.HasMember("retry_in");
}
inline bool is_error_reply(const rapidjson::Value& r) {
  return r.IsObject() && json_str(r, "status") == "error" && r.HasMember("error") &&
         r["error"].IsString() && r["error"].GetStringLength() > 0 && !r.HasMember("data");
}
inline std::optional<std::string> transaction_of(const rapidjson::Value& r) {
  if (!r.IsObject() || !r.HasMember("transaction")) return std::nullopt;
  return to_json(r["transaction"]);
}

// The keys of an auth state object (docs/mqtt-api.md "Topics the agent publishes"), in any order.
inline bool is_state_object(const rapidjson::Value& v) {
  if (!v.IsObject()) return false;
  for (const char* key : {"state", "since", "user", "expires_at", "scopes", "reason", "code"}) {
    if (!v.HasMember(key)) return false;
  }
  return v["state"].IsString() && v["scopes"].IsArray();
}

// 2026-11-26T19:04:05Z as a system-clock instant.
inline std::chrono::system_clock::time_point utc_time_point(const std::string& text) {
  std::tm tm{};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    fail("not an ISO 8601 UTC timestamp: '" + text + "'");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// Seconds from now until the timestamp `text` (negative when it has passed).
inline double seconds_until(const std::string& text) {
  return std::chrono::duration<double>(utc_time_point(text) - std::chrono::system_clock::now())
      .count();
}

// A number member as a double (NaN when it is not a number), for comparisons in CHECKs.
inline double number(const rapidjson::Value& v) {
  return v.IsNumber() ? v.GetDouble() : std::numeric_limits<double>::quiet_NaN();
}

// A request that is rate limited to one per second per account (`graph`, `refresh` with a
// resource): sent again after the reply's retry_in while the reply says to wait a second or two,
// as a well-behaved client does. Returns the first reply that is not such a short wait (a longer
// retry_in, e.g. a Retry-After window, is returned as it is).
inline rapidjson::Document request_when_allowed(Scenario& s, const std::string& action,
                                                const std::string& payload, int attempts = 4) {
  for (int i = 0;; ++i) {
    auto reply = s.display.request(action, payload);
    const bool limited = json_str(reply, "status") == "error" && reply.HasMember("retry_in") &&
                         reply["retry_in"].IsNumber() && reply["retry_in"].GetDouble() <= 2;
    if (!limited || i + 1 >= attempts) return reply;
    // The rate window is whole seconds: waiting retry_in is the client's documented duty here,
    // not a guess at how long the agent takes.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<long long>(reply["retry_in"].GetDouble() * 1000.0) + 50));
  }
}

}  // namespace g2m::test
