#include "identity/refresh_schedule.h"

#include <algorithm>

namespace g2m {

SystemTime refresh_time(SystemTime obtained_at, SystemTime expires_at, std::size_t index,
                        std::size_t count, std::uint64_t offset) {
  const auto lifetime = std::chrono::duration_cast<Seconds>(expires_at - obtained_at);
  const Seconds lead = lifetime < Seconds(600) ? lifetime / 2 : Seconds(300);
  // The window holds one second per account (at least a minute), but never more than a quarter
  // of the lifetime, so a short-lived token is still refreshed well before it expires.
  const long long wanted = std::max<long long>(60, static_cast<long long>(count));
  const long long window =
      std::max<long long>(1, std::min<long long>(wanted, lifetime.count() / 4));
  const auto slot = static_cast<long long>((index + offset) % static_cast<std::uint64_t>(window));
  return expires_at - lead - Seconds(slot);
}

}  // namespace g2m
