#include <doctest/doctest.h>

#include "common/backoff.h"
#include "fake_clock.h"
#include "http/http_failure.h"

using namespace g2m;
using namespace std::chrono_literals;

TEST_CASE("http failure: a transfer without an answer has one word per kind") {
  CHECK(std::string(transport_error_code(TransportError::network)) == "network_error");
  CHECK(std::string(transport_error_code(TransportError::timeout)) == "timeout");
  CHECK(std::string(transport_error_code(TransportError::tls)) == "tls_error");
}

TEST_CASE("http failure: Retry-After in seconds, clamped to [0, 1 h]") {
  const SystemTime now = test::FakeClock().system();
  CHECK_FALSE(parse_retry_after(std::nullopt, now));
  CHECK(parse_retry_after("0", now) == 0s);
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after("3600", now) == 3600s);
  CHECK(parse_retry_after("3601", now) == 3600s);
  CHECK(parse_retry_after("-5", now) == 0s);
  CHECK(parse_retry_after("99999999999999999999999999", now) == 3600s);
  CHECK_FALSE(parse_retry_after("-99999999999999999999999999", now));
  CHECK_FALSE(parse_retry_after("12s", now));
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after(" 5", now));
}

TEST_CASE("http failure: Retry-After as an HTTP date counts from the clock it is given") {
  test::FakeClock clock;  // 2026-11-26T19:00:00Z
  const std::string date = "Thu, 26 Nov 2026 19:01:00 GMT";
  CHECK(parse_retry_after(date, clock.system()) == 60s);
  clock.advance(45s);
  CHECK(parse_retry_after(date, clock.system()) == 15s);
  clock.advance(1h);
  CHECK(parse_retry_after(date, clock.system()) == 0s);  // already past
  CHECK(parse_retry_after("Fri, 27 Nov 2026 19:00:00 GMT", test::FakeClock().system()) == 3600s);
}

TEST_CASE("backoff: retry_delay doubles from base, counts the failure and honours Retry-After") {
  Jitter jitter(7);
  int failures = 0;
  const Millis first = retry_delay(failures, 5s, 300s, jitter);
  CHECK(failures == 1);
  CHECK(first <= 5s);
  CHECK(first >= 4s);
  const Millis second = retry_delay(failures, 5s, 300s, jitter);
  CHECK(second <= 10s);
  CHECK(second >= 8s);
  // A Retry-After longer than the backoff wins; a shorter one does not shorten it.
  CHECK(retry_delay(failures, 5s, 300s, jitter, 120s) == 120s);
  CHECK(retry_delay(failures, 5s, 300s, jitter, 1s) >= 32s);
  for (int i = 0; i < 20; ++i) CHECK(retry_delay(failures, 5s, 300s, jitter) <= 300s);
}
