#include <doctest/doctest.h>

#include <set>

#include "identity/refresh_schedule.h"

using namespace g2m;

namespace {
const SystemTime t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 26};
long long seconds_before(SystemTime when, SystemTime expiry) {
  return std::chrono::duration_cast<Seconds>(expiry - when).count();
}
}  // namespace

TEST_CASE(
    "refresh schedule: an hour-long token is refreshed 5 minutes before expiry, minus a spread") {
  const SystemTime expiry = t0 + Seconds(3600);
  const auto before = seconds_before(refresh_time(t0, expiry, 0, 1, 0), expiry);
  CHECK(before == 300);
  const auto spread = seconds_before(refresh_time(t0, expiry, 0, 1, 59), expiry);
  CHECK(spread == 359);
}

TEST_CASE("refresh schedule: a token living under 10 minutes is refreshed at half its lifetime") {
  const SystemTime expiry = t0 + Seconds(120);
  const auto when = refresh_time(t0, expiry, 0, 1, 0);
  CHECK(when == t0 + Seconds(60));
  // The spread never takes it past a quarter of the lifetime earlier.
  for (std::uint64_t offset = 0; offset < 100; ++offset) {
    CHECK(refresh_time(t0, expiry, 0, 1, offset) >= t0 + Seconds(30));
  }
}

TEST_CASE(
    "refresh schedule: 1,000 accounts whose tokens expire together never refresh in the same "
    "second") {
  const SystemTime expiry = t0 + Seconds(4500);  // 75 minutes, Microsoft's average
  for (std::uint64_t offset : {0ULL, 17ULL, 3599ULL}) {
    std::set<long long> seconds;
    for (std::size_t i = 0; i < 1000; ++i) {
      const auto when = refresh_time(t0, expiry, i, 1000, offset);
      CHECK(when < expiry - Seconds(299));
      CHECK(when > t0);
      seconds.insert(std::chrono::duration_cast<Seconds>(when.time_since_epoch()).count());
    }
    CHECK(seconds.size() == 1000);
  }
}
