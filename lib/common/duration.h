#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace g2m {

// "30s", "5m", "1h", "2d" or a bare integer of seconds. nullopt when malformed or negative.
// In common/ because both config (durations of keys) and graph (path placeholders such as
// `{now+1d}`) read it; config must not include graph's headers for it, nor graph config's.
std::optional<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace g2m
