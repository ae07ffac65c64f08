#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace g2m::config_detail {

// The parts of a `scheme://[userinfo@]host[:port][/path...]` URL that the config checks. Never
// put one in a message as a whole: a user name and password may hide in it.
struct Url {
  std::string scheme;                    // lower-cased
  bool userinfo = false;                 // a `user[:password]@` part was present
  std::string host;                      // without the [ ] of an IPv6 literal
  std::string authority;                 // host[:port] as written, brackets kept, userinfo dropped
  std::optional<std::string> port_text;  // as written after the `:`
  std::string rest;                      // path, query and fragment, as written
};

// nullopt when the text is not of that shape (no `://`, an empty or malformed host).
std::optional<Url> parse_url(std::string_view text);

// 1..65535 written in decimal digits, else nullopt.
std::optional<int> parse_port(std::string_view text);

// localhost, ::1 and 127.0.0.0/8.
bool is_loopback_host(std::string_view host);

}  // namespace g2m::config_detail
