#include "graph/path_template.h"

#include <ctime>

#include "common/duration.h"
#include "common/time_format.h"

namespace g2m {

namespace {

// Far enough for any calendar query, near enough that time_t and chrono never overflow.
constexpr Seconds kMaxOffset{36500LL * 86400};

enum class Anchor { now, today, tomorrow };

struct Placeholder {
  Anchor anchor = Anchor::now;
  Seconds offset{0};
};

struct Parsed {
  std::optional<Placeholder> placeholder;
  std::string problem;  // when there is no placeholder
};

Parsed parse_placeholder(const std::string& name) {
  const std::string shown = "`{" + name + "}`";
  if (name == "now") return {Placeholder{Anchor::now, Seconds{0}}, {}};
  if (name == "today") return {Placeholder{Anchor::today, Seconds{0}}, {}};
  if (name == "tomorrow") return {Placeholder{Anchor::tomorrow, Seconds{0}}, {}};
  if (name.size() > 4 && name.compare(0, 3, "now") == 0 && (name[3] == '+' || name[3] == '-')) {
    const auto d = parse_duration(name.substr(4));
    if (!d) {
      return {std::nullopt, "placeholder " + shown + ": `" + name.substr(4) +
                                "` is not a duration (use <n>s, <n>m, <n>h or <n>d)"};
    }
    if (*d > kMaxOffset) {
      return {std::nullopt, "placeholder " + shown + ": the offset must be at most 36500d"};
    }
    return {Placeholder{Anchor::now, name[3] == '+' ? *d : -*d}, {}};
  }
  return {std::nullopt, "unknown placeholder " + shown +
                            " (use {now}, {today}, {tomorrow}, {now+<duration>} or "
                            "{now-<duration>})"};
}

// The instant of a local midnight: `days` after the one that starts the local day of `now`.
SystemTime local_midnight(SystemTime now, int days) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  tm.tm_hour = 0;
  tm.tm_min = 0;
  tm.tm_sec = 0;
  tm.tm_mday += days;
  tm.tm_isdst = -1;  // let mktime() decide whether that midnight is in summer time
  return std::chrono::system_clock::from_time_t(std::mktime(&tm));
}

// The timestamp alphabet is [0-9TZ:-]; of these only `:` is reserved in a URL query (RFC 3986
// §2.2 lists it as a gen-delim), so this is the whole of URL-encoding for our values. It keeps
// the graph module free of libcurl, whose calls live in the HTTP module.
std::string url_encoded_timestamp(SystemTime t) {
  std::string out;
  for (const char c : format_utc(t)) {
    if (c == ':') {
      out += "%3A";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> check_path_template(const std::string& path) {
  size_t pos = 0;
  while ((pos = path.find('{', pos)) != std::string::npos) {
    const size_t close = path.find('}', pos + 1);
    if (close == std::string::npos) {
      std::string rest = path.substr(pos, 24);
      if (pos + 24 < path.size()) rest += "...";
      return "`{` without a matching `}` in `" + rest + "`";
    }
    const Parsed parsed = parse_placeholder(path.substr(pos + 1, close - pos - 1));
    if (!parsed.placeholder) return parsed.problem;
    pos = close + 1;
  }
  return std::nullopt;
}

std::string expand_path_template(const std::string& path, SystemTime now) {
  const SystemTime whole = std::chrono::floor<Seconds>(now);
  std::string out;
  size_t pos = 0;
  while (pos < path.size()) {
    const size_t open = path.find('{', pos);
    const size_t close = open == std::string::npos ? open : path.find('}', open + 1);
    if (close == std::string::npos) break;
    const Parsed parsed = parse_placeholder(path.substr(open + 1, close - open - 1));
    out.append(path, pos, open - pos);
    if (!parsed.placeholder) {
      out.append(path, open, close - open + 1);  // unchecked input: keep it as written
    } else {
      const Placeholder& p = *parsed.placeholder;
      switch (p.anchor) {
        case Anchor::now:
          out += url_encoded_timestamp(whole + p.offset);
          break;
        case Anchor::today:
          out += url_encoded_timestamp(local_midnight(whole, 0));
          break;
        case Anchor::tomorrow:
          out += url_encoded_timestamp(local_midnight(whole, 1));
          break;
      }
    }
    pos = close + 1;
  }
  if (pos < path.size()) out.append(path, pos, std::string::npos);
  return out;
}

}  // namespace g2m
