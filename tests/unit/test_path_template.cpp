#include <doctest/doctest.h>
#include <stdlib.h>
#include <time.h>

#include <optional>
#include <string>

#include "common/time_format.h"
#include "graph/path_template.h"

using g2m::check_path_template;
using g2m::expand_path_template;
using namespace std::chrono_literals;

namespace {

// Sets TZ for one test and puts the previous value back, so no other test sees the change.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = getenv("TZ")) previous_ = old;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (previous_) {
      setenv("TZ", previous_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTimeZone(const ScopedTimeZone&) = delete;
  ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

 private:
  std::optional<std::string> previous_;
};

g2m::SystemTime at(const char* utc) {
  const auto t = g2m::parse_utc(utc);
  REQUIRE(t);
  return *t;
}

}  // namespace

TEST_CASE("path template: text outside braces is kept verbatim") {
  CHECK_FALSE(check_path_template("/me?$select=displayName,mail&$top=5"));
  CHECK_EQ(expand_path_template("/me?$select=displayName,mail&$top=5", at("2026-11-26T19:04:05Z")),
           "/me?$select=displayName,mail&$top=5");
  CHECK_EQ(expand_path_template("/a}b", at("2026-11-26T19:04:05Z")), "/a}b");
}

TEST_CASE("path template: {now} is the instant in UTC, URL-encoded, in whole seconds") {
  const auto now = at("2026-11-26T19:04:05Z") + 999ms;
  CHECK_FALSE(check_path_template("/x?t={now}"));
  CHECK_EQ(expand_path_template("/x?t={now}", now), "/x?t=2026-11-26T19%3A04%3A05Z");
}

TEST_CASE("path template: {now+d} and {now-d} add and subtract a duration") {
  const auto now = at("2026-11-26T19:04:05Z");
  CHECK_EQ(expand_path_template("{now+1h}", now), "2026-11-26T20%3A04%3A05Z");
  CHECK_EQ(expand_path_template("{now-30m}", now), "2026-11-26T18%3A34%3A05Z");
  CHECK_EQ(expand_path_template("{now+7d}", now), "2026-12-03T19%3A04%3A05Z");
  CHECK_EQ(expand_path_template("{now-90}", now), "2026-11-26T19%3A02%3A35Z");
  CHECK_EQ(expand_path_template("/v?s={now-1d}&e={now+1d}", now),
           "/v?s=2026-11-25T19%3A04%3A05Z&e=2026-11-27T19%3A04%3A05Z");
}

TEST_CASE("path template: {today} and {tomorrow} are local midnights, in UTC") {
  const auto now = at("2026-11-26T19:04:05Z");
  const std::string path = "/me/calendarView?startDateTime={today}&endDateTime={tomorrow}";
  {
    const ScopedTimeZone tz("UTC");
    CHECK_EQ(expand_path_template(path, now),
             "/me/calendarView?startDateTime=2026-11-26T00%3A00%3A00Z"
             "&endDateTime=2026-11-27T00%3A00%3A00Z");
  }
  {
    // 14:04 EST on the 26th: the local day began at 05:00 UTC.
    const ScopedTimeZone tz("America/New_York");
    CHECK_EQ(expand_path_template(path, now),
             "/me/calendarView?startDateTime=2026-11-26T05%3A00%3A00Z"
             "&endDateTime=2026-11-27T05%3A00%3A00Z");
    // 22:30 EST on the 26th is already the 27th in UTC; the local day is still the 26th.
    CHECK_EQ(expand_path_template("{today}", at("2026-11-27T03:30:00Z")),
             "2026-11-26T05%3A00%3A00Z");
  }
  {
    const ScopedTimeZone tz("Asia/Tokyo");
    CHECK_EQ(expand_path_template("{today}/{tomorrow}", now),
             "2026-11-26T15%3A00%3A00Z/2026-11-27T15%3A00%3A00Z");
  }
}

TEST_CASE("path template: a day with a summer-time change is 23 hours long") {
  // 2026-03-08: New York springs forward at 02:00; midnight is EST, the next one EDT.
  const ScopedTimeZone tz("America/New_York");
  CHECK_EQ(expand_path_template("{today}|{tomorrow}", at("2026-03-08T12:00:00Z")),
           "2026-03-08T05%3A00%3A00Z|2026-03-09T04%3A00%3A00Z");
}

TEST_CASE("path template: an unknown placeholder is named") {
  CHECK_EQ(check_path_template("/x?s={yesterday}"),
           std::optional<std::string>("unknown placeholder `{yesterday}` (use {now}, {today}, "
                                      "{tomorrow}, {now+<duration>} or {now-<duration>})"));
  CHECK_EQ(check_path_template("/x?s={now}&e={}"),
           std::optional<std::string>("unknown placeholder `{}` (use {now}, {today}, "
                                      "{tomorrow}, {now+<duration>} or {now-<duration>})"));
  CHECK(check_path_template("{Now}"));
  CHECK(check_path_template("{ now }"));
  CHECK(check_path_template("{now*2}"));
}

TEST_CASE("path template: an offset that is not a duration is named") {
  CHECK_EQ(
      check_path_template("{now+1.5h}"),
      std::optional<std::string>(
          "placeholder `{now+1.5h}`: `1.5h` is not a duration (use <n>s, <n>m, <n>h or <n>d)"));
  CHECK(check_path_template("{now+}"));
  CHECK(check_path_template("{now--1d}"));
  CHECK(check_path_template("{now+5M}"));
  CHECK_EQ(
      check_path_template("{now+36501d}"),
      std::optional<std::string>("placeholder `{now+36501d}`: the offset must be at most 36500d"));
  CHECK_FALSE(check_path_template("{now-36500d}"));
}

TEST_CASE("path template: a { without a matching } is an error") {
  CHECK_EQ(check_path_template("/x?s={now&e=1"),
           std::optional<std::string>("`{` without a matching `}` in `{now&e=1`"));
  CHECK_EQ(
      check_path_template("/x?s={today}&e={tomorrow&$select=subject,start,end"),
      std::optional<std::string>("`{` without a matching `}` in `{tomorrow&$select=subjec...`"));
}
