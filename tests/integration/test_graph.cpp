// Graph resources (docs/mqtt-api.md "Topics the agent publishes" graph/R, §3 resources / max_pages
// / placeholders, §6 Graph): fetched right after a sign-in, published retained, then only when the
// body changes (or on a `refresh`); pages merged; placeholders expanded; 429/503 honour
// Retry-After, other failures back off, and one failing resource never stalls another; logout
// clears the topics.
#include <ctime>

#include <doctest/doctest.h>

#include "scenario_broker.h"

using namespace g2m::test;

namespace {

using Clock = SteadyClock;

long long ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

bool is_object(const rapidjson::Value& v) {
  return v.IsObject();
}

MqttProbe::JsonMatch availability(const std::string& value) {
  return [value](const rapidjson::Value& v) { return json_str(v, "availability") == value; };
}

const std::string kPresence = "graph2mqtt/kitchen/graph/presence";
const std::string kMe = "graph2mqtt/kitchen/graph/me";

// The next graph_error event of `resource` (after `since`).
Message wait_graph_error(Scenario& s, const std::string& resource, std::size_t since,
                         std::chrono::milliseconds timeout = 15s) {
  return s.display.wait_for_json(
      s.topic("kitchen", "events"),
      [&](const rapidjson::Value& v) {
        return json_str(v, "event") == "graph_error" && json_str(v, "resource") == resource;
      },
      timeout, since);
}

// Non-empty messages on `topic` with index >= since.
std::vector<Message> bodies_since(const MqttProbe& display, const std::string& topic,
                                  std::size_t since) {
  std::vector<Message> out;
  for (auto& m : display.messages(topic)) {
    if (m.index >= since && !m.payload.empty()) out.push_back(std::move(m));
  }
  return out;
}

std::string dump(const std::vector<Message>& messages) {
  std::string out;
  for (const auto& m : messages) out += "  " + m.describe() + "\n";
  return out;
}

// "2026-11-26T19:04:05.0000000" (the simulator's event times, UTC) for a time_t.
std::string graph_datetime(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.0000000", &tm);
  return text;
}

// The gateway's local midnight of the day of `t` (+ `days`), as a time_t.
std::time_t local_midnight(std::time_t t, int days = 0) {
  std::tm tm{};
  localtime_r(&t, &tm);
  tm.tm_hour = 0;
  tm.tm_min = 0;
  tm.tm_sec = 0;
  tm.tm_mday += days;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

// Parses "YYYY-MM-DDTHH:MM:SS" (UTC, any suffix) into a time_t; -1 when malformed.
std::time_t parse_utc(const std::string& text) {
  std::tm tm{};
  if (text.size() < 19 ||
      ::strptime(text.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return -1;
  }
  return ::timegm(&tm);
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A query parameter of a URL, percent-decoded ("" when missing).
std::string query_param(const std::string& url, const std::string& name) {
  const auto at = url.find(name + "=");
  if (at == std::string::npos) return "";
  const auto start = at + name.size() + 1;
  const auto end = url.find('&', start);
  return percent_decode(url.substr(start, end == std::string::npos ? end : end - start));
}

std::vector<std::string> event_ids(const rapidjson::Value& body) {
  std::vector<std::string> ids;
  if (!body.HasMember("value") || !body["value"].IsArray()) return ids;
  for (const auto& e : body["value"].GetArray()) ids.push_back(json_str(e, "id"));
  return ids;
}

std::vector<std::string> expected_ids(int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back("AAMkAGI2-sim-event-" + std::to_string(i));
  return ids;
}

// An HTTP date (RFC 9110 IMF-fixdate) for a time_t.
std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

ScenarioOptions with_resources(const std::string& resources,
                               std::vector<std::string> simulator_args = {"--interval", "1"}) {
  ScenarioOptions options;
  options.accounts = kitchen_with(resources);
  options.simulator_args = std::move(simulator_args);
  return options;
}

}  // namespace

TEST_CASE(
    "graph: resources are fetched right after the sign-in and published retained, then "
    "again only when the body changes") {
  Scenario s(
      with_resources("    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n"
                     "    presence: { path: /me/presence, every: 5s }\n"));
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();
  const Message signed_in = s.wait_state("kitchen", "signed_in", before);
  const Message me = d.wait_for_json(kMe, is_object, 5s, before);
  const Message first = d.wait_for_json(kPresence, availability("Available"), 5s, before);
  CHECK(json_str(me.json(), "displayName") == "Adele Vance");
  CHECK(first.qos == 1);
  // "Right after": not one `every` later.
  CHECK(ms_between(signed_in.arrived, me.arrived) < 3000);
  CHECK(ms_between(signed_in.arrived, first.arrived) < 3000);
  const auto retained = retained_map(d, "graph2mqtt/kitchen/graph/#");
  INFO("retained:\n" << describe(retained));
  CHECK(retained.count(kMe) == 1);
  REQUIRE(retained.count(kPresence) == 1);
  CHECK(retained.at(kPresence) == first.payload);

  // Two more fetches of an unchanged body publish nothing. (The agent schedules the next fetch
  // only once the previous answer is handled, so when the simulator has seen fetch n+2, fetch n+1
  // has been handled.)
  const std::size_t after_first = d.mark();
  const long fetched = graph_path_count(s.simulator, "/v1.0/me/presence");
  REQUIRE(poll_until(
      [&] { return graph_path_count(s.simulator, "/v1.0/me/presence") >= fetched + 2; }, 15s));
  d.sync();
  CHECK_MESSAGE(bodies_since(d, kPresence, after_first).empty(),
                "an unchanged body was published again:\n"
                    << dump(bodies_since(d, kPresence, after_first)));
  CHECK(bodies_since(d, kMe, after_first).empty());

  // A changed body is published, and it is the first presence message since then.
  s.simulator.config(R"({"presence":{"availability":"Busy","activity":"InACall"}})");
  const Message busy = d.wait_for_json(kPresence, availability("Busy"), 10s, after_first);
  CHECK(json_str(busy.json(), "activity") == "InACall");
  const auto since_first = bodies_since(d, kPresence, after_first);
  REQUIRE_FALSE(since_first.empty());
  CHECK_MESSAGE(since_first.front().index == busy.index, dump(since_first));
  CHECK(d.retained_value(kPresence) == busy.payload);
}

TEST_CASE("graph: refresh of a resource publishes its body even when it is unchanged") {
  Scenario s;
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();
  const Message first = d.wait_for_json(kPresence, is_object, 10s, before);
  const std::size_t since = d.mark();
  const long fetched = graph_path_count(s.simulator, "/v1.0/me/presence");

  const auto reply = d.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  CHECK(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"], "resource") == "presence");
  REQUIRE(reply["data"]["status"].IsInt());
  CHECK(reply["data"]["status"].GetInt() == 200);
  const Message again = d.wait_for(kPresence, {}, 5s, since);
  CHECK(again.payload == first.payload);
  CHECK(graph_path_count(s.simulator, "/v1.0/me/presence") == fetched + 1);
}

TEST_CASE(
    "graph: max_pages follows @odata.nextLink and publishes one body with every page's "
    "events") {
  // 7 events in pages of 3: pages of 3, 3 and 1.
  Scenario s(with_resources(
      "    week: { path: \"/me/calendarView?startDateTime={today}&endDateTime={tomorrow}\", "
      "every: 1h, max_pages: 3 }\n"
      "    two: { path: \"/me/calendarView?startDateTime={now}&endDateTime={now+1d}\", every: 1h, "
      "max_pages: 2 }\n"
      "    one: { path: \"/me/calendarView?startDateTime={now}&endDateTime={now+1d}\", every: 1h "
      "}\n",
      {"--interval", "1", "--events", "7", "--page-size", "3"}));
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();

  const Message week = d.wait_for_json("graph2mqtt/kitchen/graph/week", is_object, 10s, before);
  const auto body = week.json();
  INFO("week: " << week.describe());
  CHECK(body.HasMember("@odata.context"));
  CHECK_FALSE(body.HasMember("@odata.nextLink"));
  CHECK(event_ids(body) == expected_ids(7));

  // max_pages 2: the first two pages, merged, without the link to the third.
  const Message two = d.wait_for_json("graph2mqtt/kitchen/graph/two", is_object, 10s, before);
  INFO("two: " << two.describe());
  CHECK(event_ids(two.json()) == expected_ids(6));
  CHECK_FALSE(two.json().HasMember("@odata.nextLink"));

  // max_pages 1 (the default): Graph's body unchanged, its nextLink included.
  const Message one = d.wait_for_json("graph2mqtt/kitchen/graph/one", is_object, 10s, before);
  INFO("one: " << one.describe());
  CHECK(event_ids(one.json()) == expected_ids(3));
  CHECK(one.json().HasMember("@odata.nextLink"));

  // 3 + 2 + 1 page requests, no more.
  d.sync();
  CHECK(graph_path_count(s.simulator, "/v1.0/me/calendarView") == 6);
  CHECK(bodies_since(d, "graph2mqtt/kitchen/graph/week", before).size() == 1);
  CHECK(d.retained_value("graph2mqtt/kitchen/graph/week") == week.payload);
}

TEST_CASE(
    "graph: the {today} {tomorrow} {now} {now+1h} and {now-1h} placeholders become "
    "timestamps that calendarView accepts") {
  // Pages of 1 event: the published body keeps Graph's nextLink, which repeats both parameters as
  // the simulator received them.
  Scenario s(with_resources(
      "    day: { path: \"/me/calendarView?startDateTime={today}&endDateTime={tomorrow}\", "
      "every: 1h }\n"
      "    hour: { path: \"/me/calendarView?startDateTime={now-1h}&endDateTime={now+1h}\", "
      "every: 1h }\n",
      {"--interval", "1", "--events", "2", "--page-size", "1"}));
  auto& d = s.display;
  const std::size_t before = d.mark();
  const std::time_t t0 = std::time(nullptr);
  s.sign_in();
  const Message day = d.wait_for_json("graph2mqtt/kitchen/graph/day", is_object, 10s, before);
  const Message hour = d.wait_for_json("graph2mqtt/kitchen/graph/hour", is_object, 10s, before);
  const std::time_t t1 = std::time(nullptr);
  INFO("day: " << day.describe());
  INFO("hour: " << hour.describe());

  // {today} and {tomorrow}: the gateway's local midnights, in UTC.
  const auto day_body = day.json();
  REQUIRE(day_body["value"].IsArray());
  REQUIRE(day_body["value"].Size() == 1);
  const std::string day_start = json_str(day_body["value"][0]["start"], "dateTime");
  CHECK((day_start == graph_datetime(local_midnight(t0)) ||
         day_start == graph_datetime(local_midnight(t1))));
  const std::string day_link = json_str(day_body, "@odata.nextLink");
  const std::string today = query_param(day_link, "startDateTime");
  const std::string tomorrow = query_param(day_link, "endDateTime");
  CHECK_MESSAGE(today.ends_with("Z"), today);
  CHECK_MESSAGE(tomorrow.ends_with("Z"), tomorrow);
  const std::time_t midnight = parse_utc(today);
  CHECK((midnight == local_midnight(t0) || midnight == local_midnight(t1)));
  CHECK(parse_utc(tomorrow) == local_midnight(midnight, 1));

  // {now-1h} and {now+1h}: two hours apart, around the time of the fetch.
  const auto hour_body = hour.json();
  const std::string hour_link = json_str(hour_body, "@odata.nextLink");
  const std::time_t start = parse_utc(query_param(hour_link, "startDateTime"));
  const std::time_t end = parse_utc(query_param(hour_link, "endDateTime"));
  CHECK(start >= t0 - 3600 - 1);
  CHECK(start <= t1 - 3600 + 1);
  CHECK(end - start == 7200);
  CHECK(query_param(hour_link, "endDateTime").ends_with("Z"));
}

TEST_CASE(
    "graph: a 429 with Retry-After: graph_error with retry_in and no retry before that time while "
    "the other resource keeps updating" *
    doctest::test_suite("faults")) {
  Scenario s(
      with_resources("    me: { path: /me, every: 5s }\n"
                     "    presence: { path: /me/presence, every: 5s }\n"));
  auto& d = s.display;
  // The first presence fetch after the sign-in gets a 429 asking for 6 s.
  s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","count":1,"status":429,"retry_after":"6",)"
                   R"("error":"TooManyRequests","description":"Too many requests, please wait."})");
  const std::size_t before = d.mark();
  s.sign_in();

  const Message error = wait_graph_error(s, "presence", before);
  const auto ev = error.json();
  INFO("graph_error: " << error.describe());
  REQUIRE(ev["status"].IsInt());
  CHECK(ev["status"].GetInt() == 429);
  CHECK(json_str(ev, "code") == "TooManyRequests");
  CHECK(json_str(ev, "message") == "Too many requests, please wait.");
  REQUIRE(ev["retry_in"].IsNumber());
  CHECK(ev["retry_in"].GetDouble() >= 6);
  CHECK(ev["retry_in"].GetDouble() <= 7);
  CHECK(bodies_since(d, kPresence, before).empty());

  // Inside the window a refresh of that resource is refused with retry_in, without a request.
  const auto refused = d.request("refresh", R"({"account":"kitchen","resource":"presence"})");
  CHECK(json_str(refused, "status") == "error");
  REQUIRE(refused.HasMember("retry_in"));
  CHECK(refused["retry_in"].GetDouble() >= 1);
  CHECK(refused["retry_in"].GetDouble() <= 6);

  // The retry comes after Retry-After; meanwhile `me` is fetched on its own schedule.
  const Message presence = d.wait_for_json(kPresence, is_object, 15s, error.index);
  const long elapsed = static_cast<long>(ms_between(error.arrived, presence.arrived));
  MESSAGE("presence published " << elapsed << " ms after the 429's graph_error");
  CHECK(elapsed >= 5800);
  CHECK(elapsed <= 8000);
  CHECK(graph_path_count(s.simulator, "/v1.0/me/presence") == 2);
  CHECK(graph_path_count(s.simulator, "/v1.0/me") >= 2);
  CHECK(bodies_since(d, kMe, before).size() == 1);  // fetched twice, unchanged: published once
}

TEST_CASE(
    "graph: a 503 with Retry-After in seconds or as an HTTP date is retried after that "
    "time" *
    doctest::test_suite("faults")) {
  Scenario s(with_resources("    presence: { path: /me/presence, every: 1h }\n"));
  auto& d = s.display;
  // First fetch: 503, Retry-After 2 (seconds). The retry: 503, Retry-After as an HTTP date.
  s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","count":1,"status":503,"retry_after":"2",)"
                   R"("error":"ServiceNotAvailable","description":"The service is unavailable."})");
  const std::time_t until = std::time(nullptr) + 9;
  s.simulator.fail(R"({"endpoint":"/v1.0/me/presence","count":1,"status":503,"retry_after":")" +
                   http_date(until) + R"(","error":"ServiceNotAvailable","description":"Later."})");
  const std::size_t before = d.mark();
  s.sign_in();

  const Message first = wait_graph_error(s, "presence", before);
  INFO("first graph_error: " << first.describe());
  const auto ev = first.json();
  REQUIRE(ev["status"].IsInt());
  CHECK(ev["status"].GetInt() == 503);
  CHECK(json_str(ev, "code") == "ServiceNotAvailable");
  CHECK(json_str(ev, "message") == "The service is unavailable.");
  REQUIRE(ev["retry_in"].IsNumber());
  CHECK(ev["retry_in"].GetDouble() >= 2);

  const Message second = wait_graph_error(s, "presence", first.index + 1);
  INFO("second graph_error: " << second.describe());
  CHECK(ms_between(first.arrived, second.arrived) >= 1800);
  const auto ev2 = second.json();
  REQUIRE(ev2["retry_in"].IsNumber());
  CHECK(ev2["retry_in"].GetDouble() >= 1);

  const Message presence = d.wait_for_json(kPresence, is_object, 15s, before);
  // Not before the HTTP date (whole seconds: allow the second before it).
  const auto arrived = std::chrono::system_clock::now() -
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           Clock::now() - presence.arrived);
  CHECK(std::chrono::system_clock::to_time_t(arrived) >= until - 1);
  CHECK(presence.index > second.index);
  CHECK(graph_path_count(s.simulator, "/v1.0/me/presence") == 3);
}

TEST_CASE(
    "graph: a 200 whose body is not JSON: graph_error invalid_json and nothing is "
    "published" *
    doctest::test_suite("faults")) {
  Scenario s(
      with_resources("    me: { path: \"/me?$select=displayName\", every: 1h }\n"
                     "    presence: { path: /me/presence, every: 5s }\n"));
  auto& d = s.display;
  s.simulator.fail(
      R"({"endpoint":"/v1.0/me/presence","count":1,"status":200,)"
      R"("body":"<html><body>Down for maintenance</body></html>","content_type":"text/html"})");
  const std::size_t before = d.mark();
  s.sign_in();

  const Message error = wait_graph_error(s, "presence", before);
  INFO("graph_error: " << error.describe());
  const auto ev = error.json();
  CHECK(json_str(ev, "code") == "invalid_json");
  REQUIRE(ev["status"].IsInt());
  CHECK(ev["status"].GetInt() == 200);
  REQUIRE(ev["retry_in"].IsNumber());
  CHECK(ev["retry_in"].GetDouble() >= 1);
  d.wait_for_json(kMe, is_object, 10s, before);  // the other resource is published
  d.sync();
  CHECK_MESSAGE(bodies_since(d, kPresence, before).empty(),
                dump(bodies_since(d, kPresence, before)));
  CHECK(d.retained_value(kPresence) == std::nullopt);
  for (const auto& m : d.messages()) {
    CHECK(m.payload.find("Down for maintenance") == std::string::npos);
  }

  // The next attempt gets JSON and publishes it.
  const Message presence = d.wait_for_json(kPresence, is_object, 15s, error.index);
  CHECK(json_str(presence.json(), "availability") == "Available");
}

TEST_CASE(
    "graph: a 404: graph_error and an exponential backoff from every while other resources are "
    "unaffected" *
    doctest::test_suite("faults")) {
  Scenario s(
      with_resources("    missing: { path: /me/nothing, every: 5s }\n"
                     "    presence: { path: /me/presence, every: 1h }\n"));
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();
  d.wait_for_json(kPresence, is_object, 10s, before);

  const Message first = wait_graph_error(s, "missing", before);
  INFO("first graph_error: " << first.describe());
  const auto ev = first.json();
  REQUIRE(ev["status"].IsInt());
  CHECK(ev["status"].GetInt() == 404);
  CHECK(json_str(ev, "code") == "ResourceNotFound");
  CHECK(json_str(ev, "message").find("nothing") != std::string::npos);
  REQUIRE(ev["retry_in"].IsNumber());
  const double first_retry = ev["retry_in"].GetDouble();
  CHECK(first_retry >= 3);
  CHECK(first_retry <= 5);

  const Message second = wait_graph_error(s, "missing", first.index + 1, 10s);
  INFO("second graph_error: " << second.describe());
  const double second_retry = second.json()["retry_in"].GetDouble();
  CHECK(second_retry >= 1.5 * first_retry);
  CHECK(second_retry <= 10);
  CHECK(ms_between(first.arrived, second.arrived) >=
        static_cast<long long>(first_retry * 1000) - 1200);
  CHECK(graph_path_count(s.simulator, "/v1.0/me/nothing") == 2);
  CHECK(bodies_since(d, "graph2mqtt/kitchen/graph/missing", before).empty());
  CHECK(d.retained_value("graph2mqtt/kitchen/graph/missing") == std::nullopt);
  // The account itself is fine.
  const auto status = d.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_in");
}

TEST_CASE("graph: logout clears every graph topic with an empty retained payload") {
  Scenario s;
  auto& d = s.display;
  const std::size_t before = d.mark();
  s.sign_in();
  d.wait_for_json(kMe, is_object, 10s, before);
  d.wait_for_json(kPresence, is_object, 10s, before);
  REQUIRE(d.retained_value(kPresence).has_value());

  const std::size_t since = d.mark();
  const auto reply = d.request("logout", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
  CHECK(json_str(reply["data"], "state") == "signed_out");
  CHECK(json_str(reply["data"], "reason") == "logout");
  const auto empty = [](const Message& m) { return m.payload.empty(); };
  const Message me = d.wait_for(kMe, empty, 5s, since);
  const Message presence = d.wait_for(kPresence, empty, 5s, since);
  CHECK(me.qos == 1);
  CHECK(presence.qos == 1);
  const auto retained = retained_map(d, "graph2mqtt/kitchen/graph/#");
  CHECK_MESSAGE(retained.empty(), describe(retained));
  CHECK(bodies_since(d, "graph2mqtt/kitchen/graph/#", since).empty());
}
