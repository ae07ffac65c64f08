// Malformed requests (docs/mqtt-api.md "Commands"): each gets an error reply that says what was
// wrong — never a crash, never silence, never a change of state. Requests delivered as retained
// messages are never executed.
#include <doctest/doctest.h>

#include <functional>
#include <sstream>

#include "scenario_commands.h"

using namespace g2m::test;

namespace {

// One malformed request: the action (topic B/bridge/request/<action>), the payload bytes as
// published, the words the error sentence must contain (case-insensitive), and the transaction
// the reply must echo (compact JSON text; "" when the reply must have none).
struct BadRequest {
  std::string action;
  std::string payload;
  std::vector<std::string> says;
  std::string transaction = "";
};

// `{"account":"kitchen","transaction":"<tx>",` + rest: most rows name a valid account, so the
// error can only come from what the row is about.
std::string kitchen(const std::string& tx, const std::string& rest) {
  return R"({"account":"kitchen","transaction":")" + tx + "\"," + rest;
}

// A JSON object of exactly `size` bytes: {"account":"kitchen",<tx>"pad":"xxx..."}.
std::string padded(std::size_t size, const std::string& tx = "") {
  std::string head = R"({"account":"kitchen",)";
  if (!tx.empty()) head += R"("transaction":")" + tx + "\",";
  head += R"("pad":")";
  const std::string tail = "\"}";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

std::vector<BadRequest> bad_requests() {
  const std::string big = padded(65537);
  return {
      // Not JSON.
      {"logout", "not json", {"json"}},
      {"logout", R"({"account":"kitchen")", {"json"}},
      {"login", R"({'account':'kitchen'})", {"json"}},
      {"logout", R"({"account":"kitchen",})", {"json"}},
      {"login", R"({"account":"kitchen"} {"account":"kitchen"})", {"json"}},
      // JSON that is not an object.
      {"logout", "[]", {"object"}},
      {"logout", R"(["kitchen"])", {"object"}},
      {"login", R"("kitchen")", {"object"}},
      {"login", "42", {"object"}},
      {"login", "null", {"object"}},
      {"logout", "true", {"object"}},
      // Unknown action (the reply goes to B/bridge/response/<action>).
      {"reboot", kitchen("b-01", "\"x\":1}"), {"unknown action", "reboot"}, R"("b-01")"},
      {"Login", kitchen("b-02", "\"x\":1}"), {"unknown action", "Login"}, R"("b-02")"},
      {"login/now", kitchen("b-03", "\"x\":1}"), {"unknown action"}, R"("b-03")"},
      // Unknown account.
      {"logout",
       R"({"account":"garage","transaction":"b-04"})",
       {"unknown account", "garage"},
       R"("b-04")"},
      {"login",
       R"({"account":"Kitchen","transaction":"b-05"})",
       {"unknown account", "Kitchen"},
       R"("b-05")"},
      {"logout", R"({"account":"","transaction":"b-06"})", {"unknown account"}, R"("b-06")"},
      {"login",
       R"({"account":"bridge","transaction":"b-07"})",
       {"unknown account", "bridge"},
       R"("b-07")"},
      // The account omitted while several are configured.
      {"login", R"({"transaction":"b-08"})", {"account", "required"}, R"("b-08")"},
      {"logout", R"({"transaction":9})", {"account", "required"}, "9"},
      {"refresh", "", {"account", "required"}},
      {"graph", R"({"path":"/me","transaction":"b-10"})", {"account", "required"}, R"("b-10")"},
      // Fields of the wrong type.
      {"logout", R"({"account":5,"transaction":"b-11"})", {"account", "string"}, R"("b-11")"},
      {"logout",
       R"({"account":{"name":"kitchen"},"transaction":"b-12"})",
       {"account", "string"},
       R"("b-12")"},
      {"logout",
       R"({"account":["kitchen"],"transaction":"b-13"})",
       {"account", "string"},
       R"("b-13")"},
      {"login", R"({"account":true,"transaction":"b-14"})", {"account", "string"}, R"("b-14")"},
      {"login", kitchen("b-15", R"("force":"true"})"), {"force"}, R"("b-15")"},
      {"login", kitchen("b-16", R"("force":1})"), {"force"}, R"("b-16")"},
      {"refresh", kitchen("b-17", R"("resource":7})"), {"resource"}, R"("b-17")"},
      {"refresh", kitchen("b-18", R"("resource":["me"]})"), {"resource"}, R"("b-18")"},
      {"graph", kitchen("b-19", R"("path":7})"), {"path"}, R"("b-19")"},
      {"graph", kitchen("b-20", R"("path":["/me"]})"), {"path"}, R"("b-20")"},
      {"graph", kitchen("b-21", R"("x":1})"), {"path"}, R"("b-21")"},
      {"logout", R"({"account":"kitchen","transaction":{"id":1}})", {"transaction"}, R"({"id":1})"},
      {"logout", R"({"account":"kitchen","transaction":[1,2]})", {"transaction"}, "[1,2]"},
      {"login", R"({"account":"hall","transaction":true})", {"transaction"}, "true"},
      // Too large: 65,537 bytes (65,536 is allowed, see the test).
      {"logout", big, {"65536"}},
      // Not valid UTF-8 (all inside otherwise valid JSON).
      {"logout", "{\"account\":\"kitchen\",\"note\":\"caf\xC3\"}", {"utf-8"}},
      {"logout", "{\"account\":\"kitchen\",\"note\":\"\xFF\"}", {"utf-8"}},
      {"logout", "{\"account\":\"kitchen\",\"note\":\"\xC0\xAF\"}", {"utf-8"}},
      {"logout", "{\"account\":\"kitchen\",\"note\":\"\xED\xA0\x80\"}", {"utf-8"}},
      {"logout", "{\"account\":\"kitchen\",\"note\":\"\xF4\x90\x80\x80\"}", {"utf-8"}},
      {"logout", "{\"account\":\"kitchen\",\"note\":\"\xE2\x82\"}", {"utf-8"}},
      {"logout", "{\"acc\x80ount\":\"kitchen\"}", {"utf-8"}},
      // `graph` paths outside graph_allow [/me].
      {"graph", kitchen("b-30", R"("path":"/me2"})"), {"graph_allow"}, R"("b-30")"},
      {"graph", kitchen("b-31", R"("path":"/messages"})"), {"graph_allow"}, R"("b-31")"},
      {"graph", kitchen("b-32", R"("path":"/users"})"), {"graph_allow"}, R"("b-32")"},
      {"graph",
       kitchen("b-33", R"("path":"/users/adele@contoso.com/presence"})"),
       {"graph_allow"},
       R"("b-33")"},
      // Dot segments, plain and percent-encoded.
      {"graph", kitchen("b-34", R"("path":"/me/../users"})"), {"segment"}, R"("b-34")"},
      {"graph", kitchen("b-35", R"("path":"/me/./presence"})"), {"segment"}, R"("b-35")"},
      {"graph", kitchen("b-36", R"("path":"/me/.."})"), {"segment"}, R"("b-36")"},
      {"graph", kitchen("b-37", R"("path":"/me/%2e%2e/users"})"), {"segment"}, R"("b-37")"},
      {"graph", kitchen("b-38", R"("path":"/me/%2E%2E/users"})"), {"segment"}, R"("b-38")"},
      {"graph", kitchen("b-39", R"("path":"/me/%2e/presence"})"), {"segment"}, R"("b-39")"},
      {"graph", kitchen("b-40", R"("path":"/me/.%2E/users"})"), {"segment"}, R"("b-40")"},
      // Double slashes and URLs.
      {"graph", kitchen("b-41", R"("path":"/me//presence"})"), {"//"}, R"("b-41")"},
      {"graph", kitchen("b-42", R"("path":"https://evil.example/x"})"), {"path"}, R"("b-42")"},
      {"graph", kitchen("b-43", R"("path":"/https://x"})"), {"path"}, R"("b-43")"},
      {"graph", kitchen("b-44", R"("path":"/me/https://evil.example/x"})"), {"path"}, R"("b-44")"},
      // Backslash, spaces, control characters.
      {"graph", kitchen("b-45", R"("path":"/me\\presence"})"), {"backslash"}, R"("b-45")"},
      {"graph", kitchen("b-46", R"("path":"/me\\..\\users"})"), {"backslash"}, R"("b-46")"},
      {"graph", kitchen("b-47", R"("path":"/me presence"})"), {"space"}, R"("b-47")"},
      {"graph", kitchen("b-48", R"("path":"/me/presence "})"), {"space"}, R"("b-48")"},
      {"graph", kitchen("b-49", R"("path":"/me\tpresence"})"), {"control"}, R"("b-49")"},
      {"graph", kitchen("b-50", R"("path":"/me\n"})"), {"control"}, R"("b-50")"},
      {"graph", kitchen("b-51", R"("path":"/me\u0000/presence"})"), {"control"}, R"("b-51")"},
      {"graph", kitchen("b-52", R"("path":"/me\u007f"})"), {"control"}, R"("b-52")"},
      // Paths that do not start with /.
      {"graph", kitchen("b-53", R"("path":"me/presence"})"), {"path", "/"}, R"("b-53")"},
      {"graph", kitchen("b-54", R"("path":""})"), {"path", "/"}, R"("b-54")"},
      {"graph", kitchen("b-55", R"("path":"?$select=displayName"})"), {"path", "/"}, R"("b-55")"},
      // An unknown resource.
      {"refresh", kitchen("b-56", R"("resource":"calendar"})"), {"calendar"}, R"("b-56")"},
  };
}

// A printable version of a payload for failure messages (bytes >= 0x80 and controls as \xNN,
// long payloads cut).
std::string printable(const std::string& payload) {
  std::string out;
  for (unsigned char c : payload) {
    if (out.size() > 160) return out + "... (" + std::to_string(payload.size()) + " bytes)";
    if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Messages since `since` on the agent's own topics other than replies (and the tests' requests).
std::vector<Message> state_messages_since(const Scenario& s, std::size_t since) {
  std::vector<Message> out;
  for (auto& m : s.display.messages(s.base + "/#")) {
    if (m.index < since) continue;
    if (m.topic.rfind(s.base + "/bridge/response/", 0) == 0) continue;
    if (m.topic.rfind(s.base + "/bridge/request/", 0) == 0) continue;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

TEST_CASE("bad input: every malformed request gets an error reply and changes nothing") {
  Scenario s({.accounts = kitchen_account() + hall_account()});
  s.sign_in("kitchen");
  s.wait_state("hall", "signed_out");
  // The fetches after the sign-in have landed.
  for (const char* leaf : {"graph/me", "graph/presence"}) {
    s.display.wait_for_json(s.topic("kitchen", leaf),
                            [](const rapidjson::Value& v) { return v.IsObject(); });
  }
  const auto before = retained_snapshot(s);
  const auto counters_before = s.simulator.counters();
  const auto table = bad_requests();
  REQUIRE(table.size() >= 40);

  const auto start = s.display.mark();
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& row = table[i];
    CAPTURE(i);
    CAPTURE(row.action);
    const std::string shown = printable(row.payload);
    CAPTURE(shown);
    const auto reply_msg = raw_request(s, row.action, row.payload);
    const auto reply = try_parse_json(reply_msg.payload);
    REQUIRE_MESSAGE(!reply.HasParseError(), "the reply is not JSON: " << reply_msg.payload);
    const std::string reply_text = reply_msg.payload;
    CAPTURE(reply_text);
    CHECK(is_error_reply(reply));
    const std::string error = lower(json_str(reply, "error"));
    for (const auto& word : row.says) {
      CHECK_MESSAGE(error.find(lower(word)) != std::string::npos,
                    "the error should say '" << word << "'");
    }
    // Malformed input cannot succeed later: no retry_in.
    CHECK_FALSE(reply.HasMember("retry_in"));
    if (row.transaction.empty()) {
      CHECK_FALSE(reply.HasMember("transaction"));
    } else {
      CHECK(transaction_of(reply) == row.transaction);
    }
    CHECK(s.agent->running());
  }

  // The 65,536-byte request is within the limit: it is executed.
  {
    const std::string payload = padded(65536, "big-ok");
    REQUIRE(payload.size() == 65536);
    auto reply = raw_request(s, "status", payload).json();
    CHECK(is_ok_reply(reply));
    CHECK(transaction_of(reply) == R"("big-ok")");
    CHECK(json_str(reply["data"], "state") == "signed_in");
  }

  // Exactly one reply per request, nothing else published by the agent, nothing changed.
  s.display.sync();
  std::size_t replies = 0;
  for (const auto& m : s.display.messages(s.base + "/bridge/response/#")) {
    if (m.index >= start) ++replies;
  }
  CHECK(replies == table.size() + 1);
  for (const auto& m : state_messages_since(s, start)) CHECK_MESSAGE(false, m.describe());
  const auto after = retained_snapshot(s);
  CHECK_MESSAGE(before == after, "before:\n" << describe(before) << "after:\n" << describe(after));
  const auto counters_after = s.simulator.counters();
  CHECK(counters_after.devicecode == counters_before.devicecode);
  CHECK(counters_after.refresh == counters_before.refresh);
  CHECK(counters_after.token == counters_before.token);
  CHECK(s.agent->running());
  auto status = s.display.request("status", "{}");
  CHECK(json_str(status["data"]["accounts"]["kitchen"], "state") == "signed_in");
  CHECK(json_str(status["data"]["accounts"]["hall"], "state") == "signed_out");
}

TEST_CASE("bad input: a request published as retained is never executed") {
  Scenario s;
  s.wait_state("kitchen", "signed_out");
  auto& d = s.display;
  const std::string login_topic = request_topic(s, "login");
  // The warnings in the agent's log about a retained request on that topic.
  const auto warnings = [&] {
    std::size_t n = 0;
    std::istringstream log(s.agent->log_text());
    for (std::string line; std::getline(log, line);) {
      if (line.find("warn") != std::string::npos && line.find("retained") != std::string::npos &&
          line.find(login_topic) != std::string::npos) {
        ++n;
      }
    }
    return n;
  };
  // Each step: what it publishes, then (after the agent has handled everything sent before) no
  // login reply, no device-code request, still signed out — and one more warning when `warns`.
  const auto step = [&](const std::string& what, const std::function<void()>& act, bool warns) {
    CAPTURE(what);
    const auto since = d.mark();
    const auto warnings_before = warnings();
    const auto devicecode_before = s.simulator.counters().devicecode;
    act();
    if (warns) CHECK(poll_until([&] { return warnings() > warnings_before; }, 5s));
    const auto status = d.request("status", R"({"account":"kitchen"})");
    CHECK(json_str(status["data"], "state") == "signed_out");
    d.sync();
    for (const auto& m : d.messages(response_topic(s, "login"))) {
      CHECK_MESSAGE(m.index < since, "the login was run: " << m.describe());
    }
    CHECK(s.simulator.counters().devicecode == devicecode_before);
    CHECK(s.agent->running());
  };

  step(
      "published retained while the agent is connected",
      [&] { d.publish(login_topic, R"({"account":"kitchen","transaction":"ret-1"})", true); },
      true);
  step(
      "still retained when the agent restarts: delivered on subscription",
      [&] {
        REQUIRE(s.agent->stop() == 0);
        const auto since = d.mark();
        s.agent->start();
        s.wait_online(since);
      },
      true);
  step(
      "cleared with an empty retained message",
      [&] {
        d.publish(login_topic, "", true);
        CHECK(d.retained_value(login_topic) == std::nullopt);
      },
      false);
}
