#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "common/clock.h"

namespace g2m {

// Exponential backoff with jitter: base·2^attempt (attempt 0 = base), capped, then scaled by a
// random factor in [0.8, 1.0] so many clients that failed together do not retry together.
inline Millis backoff_delay(int attempt, Millis base, Millis cap, double jitter01) {
  Millis delay = base;
  for (int i = 0; i < attempt && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  const double factor = 1.0 - 0.2 * std::clamp(jitter01, 0.0, 1.0);
  return Millis(static_cast<std::int64_t>(static_cast<double>(delay.count()) * factor));
}

class Jitter;

// The wait before retrying after the `failures`-th transient failure in a row (counting it):
// backoff_delay from `base`, capped, jittered, but never sooner than a Retry-After the server
// asked for. The one retry rule of discovery, sign-in, refresh and Graph (CONTRACT §6).
Millis retry_delay(int& failures, Millis base, Millis cap, Jitter& jitter,
                   std::optional<Seconds> retry_after = std::nullopt);

// A small seeded source of jitter, so tests can make it deterministic. SplitMix64: 8 bytes of
// state. Every Account holds two of these (its own and its DeviceFlow's); std::mt19937_64 keeps
// 2.5 KiB of state, which made 5 MB of resident memory at 1,000 accounts for a few random
// numbers per hour. Jitter needs no more than a well-mixed 64-bit sequence.
class Jitter {
 public:
  explicit Jitter(std::uint64_t seed) : state_(seed) {}
  // Uniform in [0, 1): the top 53 bits of the next output, as a double.
  double next() { return static_cast<double>(step() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t step() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

inline Millis retry_delay(int& failures, Millis base, Millis cap, Jitter& jitter,
                          std::optional<Seconds> retry_after) {
  return std::max<Millis>(backoff_delay(failures++, base, cap, jitter.next()),
                          retry_after.value_or(Seconds(0)));
}

}  // namespace g2m
