#include "graph/graph_path.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace g2m {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// Code points that some server, proxy or normaliser (NFKC) turns into `.`, `/` or `\`.
bool is_lookalike(std::uint32_t cp) {
  constexpr std::array<std::uint32_t, 11> lookalikes = {
      0xFF0E,  // fullwidth full stop
      0xFE52,  // small full stop
      0x2024,  // one dot leader
      0x3002,  // ideographic full stop
      0xFF61,  // halfwidth ideographic full stop
      0xFF0F,  // fullwidth solidus
      0x2215,  // division slash
      0x2044,  // fraction slash
      0xFF3C,  // fullwidth reverse solidus
      0xFE68,  // small reverse solidus
      0x29F5,  // reverse solidus operator
  };
  for (const auto l : lookalikes) {
    if (cp == l) return true;
  }
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Calls
// `each` with every code point; false on the first invalid sequence.
template <typename Each>
bool decode_utf8(std::string_view s, Each&& each) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = 0;
    std::size_t len = 0;
    std::uint32_t min = 0;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if ((b0 & 0xE0) == 0xC0) {
      cp = b0 & 0x1F;
      len = 2;
      min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      cp = b0 & 0x0F;
      len = 3;
      min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      cp = b0 & 0x07;
      len = 4;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    each(cp);
    i += len;
  }
  return true;
}

struct Decoded {
  std::string bytes;                  // the path with every %XX decoded
  bool encoded_special = false;       // a %XX decoded to . / \ or a control character
  std::optional<std::string> broken;  // a % not followed by two hex digits (%u002e, %zz, %)
};

Decoded percent_decode(std::string_view s) {
  Decoded d;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      d.bytes += s[i];
      continue;
    }
    const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      d.broken = "`path` holds a % that is not followed by two hex digits";
      return d;
    }
    const auto c = static_cast<unsigned char>(hi * 16 + lo);
    if (c == '.' || c == '/' || c == '\\' || is_control(c)) d.encoded_special = true;
    d.bytes += static_cast<char>(c);
    i += 2;
  }
  return d;
}

bool has_dot_segment(std::string_view route) {
  // Segments of the route (before ? or #); `..;x` counts as `..` (Tomcat and others strip
  // path parameters before resolving dots).
  std::size_t start = 0;
  while (start <= route.size()) {
    const std::size_t end = std::min(route.find('/', start), route.size());
    std::string_view segment = route.substr(start, end - start);
    segment = segment.substr(0, segment.find(';'));
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::optional<std::string> check_graph_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return "`path` must start with /";
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_control(c) || c == ' ') return "`path` must not contain spaces or control characters";
    if (c == '\\') return "`path` must not contain a backslash";
  }
  if (path.find("//") != std::string::npos) return "`path` must not contain //";
  if (path.find("://") != std::string::npos) return "`path` must be a path, not a URL";
  // The dot-segment check reads the decoded route: %2e%2e is as much a `..` as `..` is. The
  // route ends at the first ? or # as sent (a %3F is not the start of a query).
  const std::string_view route = std::string_view(path).substr(0, path.find_first_of("?#"));
  if (has_dot_segment(percent_decode(route).bytes)) {
    return "`path` must not contain . or .. segments";
  }
  const Decoded decoded = percent_decode(path);
  const std::string_view bytes = decoded.bytes;
  if (decoded.broken) return *decoded.broken;
  if (decoded.encoded_special) {
    return "`path` must not percent-encode `.`, `/`, `\\` or a control character";
  }
  bool lookalike = false;
  if (!decode_utf8(bytes, [&](std::uint32_t cp) { lookalike = lookalike || is_lookalike(cp); })) {
    return "`path` must be valid UTF-8, also once percent-decoded (no overlong forms)";
  }
  if (lookalike) return "`path` must not contain a look-alike of `.`, `/` or `\\`";
  return std::nullopt;
}

bool path_allowed_by(const std::string& path, const std::string& prefix) {
  if (prefix.empty() || path.compare(0, prefix.size(), prefix) != 0) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  const char next = path[prefix.size()];
  return next == '/' || next == '?';
}

}  // namespace g2m
