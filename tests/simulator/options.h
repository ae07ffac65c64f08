// Command line of g2m-simulator.
#pragma once

#include <optional>
#include <string>

namespace g2m::sim {

struct Options {
  std::string port_file;
  int https_port = 0;
  int http_port = 0;
  std::string cert;
  std::string key;
  std::string bind = "127.0.0.1";
  int interval = 5;
  int expires_in = 900;
  int token_lifetime = 3600;
  std::string verification_uri = "https://microsoft.com/devicelogin";
  std::optional<double> auto_approve_after;
  bool strict_rotation = false;
  int page_size = 10;
  int events = 3;
  // Worker threads per listener, all started at once (httplib's ThreadPool): each kept-alive
  // connection holds one.
  int threads = 4096;
  bool log = false;
};

extern const char* const kUsage;

// Throws std::invalid_argument with a one-line message on a usage error.
Options parse_options(int argc, char** argv);

}  // namespace g2m::sim
