#pragma once

#include <optional>
#include <string>

#include "common/clock.h"

namespace g2m {

// Resource path placeholders (config/config.yaml): {now}, {today}, {tomorrow} (the gateway's local
// midnights), {now+<duration>}, {now-<duration>}; each expands to an ISO 8601 UTC timestamp,
// URL-encoded.

// nullopt when every placeholder is known, else a sentence naming the first bad one.
std::optional<std::string> check_path_template(const std::string& path);

// Expands a template that passed check_path_template.
std::string expand_path_template(const std::string& path, SystemTime now);

}  // namespace g2m
