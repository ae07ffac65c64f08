#pragma once

#include <cstddef>
#include <cstdint>

#include "common/clock.h"

namespace g2m {

// When to refresh an access token (docs/mqtt-api.md "Tokens"): 5 minutes before it expires (half
// its lifetime when that is under 10 minutes), minus a spread. The spread gives account `index` of
// `count` its own second within a window, shifted by an `offset` the agent draws at random once:
// 1,000 accounts whose tokens expire in the same second never refresh in the same second.
SystemTime refresh_time(SystemTime obtained_at, SystemTime expires_at, std::size_t index,
                        std::size_t count, std::uint64_t offset);

}  // namespace g2m
