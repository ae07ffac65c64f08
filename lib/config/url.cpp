#include "config/url.h"

#include <algorithm>
#include <cctype>

namespace g2m::config_detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_host_char(unsigned char c) {
  return std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_';
}

bool is_ipv6_char(unsigned char c) {
  return std::isxdigit(c) != 0 || c == ':' || c == '.';
}

}  // namespace

std::optional<Url> parse_url(std::string_view text) {
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  Url url;
  const std::string_view scheme = text.substr(0, sep);
  if (!std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '+' || c == '-' || c == '.';
      })) {
    return std::nullopt;
  }
  url.scheme = lower(scheme);
  std::string_view rest = text.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  url.rest = end == std::string_view::npos ? std::string() : std::string(rest.substr(end));
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    url.userinfo = true;
    authority = authority.substr(at + 1);
  }
  url.authority = std::string(authority);
  std::string_view host_port = authority;
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    url.host = std::string(host_port.substr(1, close - 1));
    if (url.host.empty() || !std::all_of(url.host.begin(), url.host.end(), is_ipv6_char)) {
      return std::nullopt;
    }
    host_port = host_port.substr(close + 1);
    if (!host_port.empty()) {
      if (host_port.front() != ':') return std::nullopt;
      url.port_text = std::string(host_port.substr(1));
    }
    return url;
  }
  const size_t colon = host_port.find(':');
  url.host = std::string(host_port.substr(0, colon));
  if (colon != std::string_view::npos) url.port_text = std::string(host_port.substr(colon + 1));
  if (url.host.empty() || !std::all_of(url.host.begin(), url.host.end(), is_host_char)) {
    return std::nullopt;
  }
  return url;
}

std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

bool is_loopback_host(std::string_view host) {
  const std::string h = lower(host);
  if (h == "localhost" || h == "::1") return true;
  // 127.0.0.0/8 as a dotted quad of decimal octets.
  int parts = 0;
  size_t pos = 0;
  while (pos <= h.size()) {
    const size_t dot = std::min(h.find('.', pos), h.size());
    const std::string_view part = std::string_view(h).substr(pos, dot - pos);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return false;
    }
    const int value = std::stoi(std::string(part));
    if (value > 255 || (parts == 0 && value != 127)) return false;
    ++parts;
    pos = dot + 1;
  }
  return parts == 4;
}

}  // namespace g2m::config_detail
