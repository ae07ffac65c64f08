#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

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

// A small seeded source of jitter, so tests can make it deterministic.
class Jitter {
 public:
  explicit Jitter(std::uint64_t seed) : engine_(seed) {}
  double next() { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace g2m
