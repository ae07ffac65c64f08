// Fuzzes the small text grammars of the config: parse_duration() and resource path templates
// (check_path_template(), then expand_path_template() on the ones it accepts).
//
// Input: the whole of it is both the duration text and the template.

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>

#include "common/duration.h"
#include "config/config.h"
#include "fuzz_support.h"
#include "graph/path_template.h"

namespace {

using g2m::fuzz::require;

// A fixed instant, so a crash replays: 2024-03-31 01:30:00 UTC, half an hour before Berlin
// springs forward, so {today} and {tomorrow} straddle a DST change.
const g2m::SystemTime kNow =
    std::chrono::sys_days{std::chrono::year{2024} / 3 / 31} + std::chrono::minutes(90);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The local midnights of {today}/{tomorrow} depend on TZ: pin one with DST.
  ::setenv("TZ", "Europe/Berlin", 1);
  ::tzset();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(g2m::fuzz::as_text(data, size));

  if (const auto d = g2m::parse_duration(text)) {
    require(d->count() >= 0, "a duration is never negative");
    // Whatever the unit, the same span written in seconds means the same.
    require(g2m::parse_duration(std::to_string(d->count())) == d,
            "a duration round-trips through seconds");
  }

  if (!g2m::check_path_template(text)) {
    const std::string expanded = g2m::expand_path_template(text, kNow);
    // Every brace of an accepted template was a placeholder, and placeholders become timestamps.
    require(expanded.find('{') == std::string::npos, "no placeholder survives expansion");
    require(g2m::expand_path_template(text, kNow) == expanded, "expansion is deterministic");
  }
  return 0;
}
