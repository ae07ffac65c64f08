#include "options.h"

#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace g2m::sim {

const char* const kUsage =
    "usage: g2m-simulator --port-file FILE [--https-port N] [--http-port N]\n"
    "                     [--cert server.pem --key server.key] [--bind 127.0.0.1]\n"
    "                     [--interval 5] [--expires-in 900] [--token-lifetime 3600]\n"
    "                     [--verification-uri URL|self] [--auto-approve-after SECONDS]\n"
    "                     [--strict-rotation] [--page-size 10] [--events 3] [--threads 4096]\n"
    "                     [--log]\n";

namespace {

long parse_long(std::string_view name, const std::string& text, long min, long max) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end == nullptr || *end != '\0' || value < min || value > max) {
    throw std::invalid_argument(std::string(name) + ": expected an integer from " +
                                std::to_string(min) + " to " + std::to_string(max) + ", got '" +
                                text + "'");
  }
  return value;
}

double parse_seconds(std::string_view name, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || !(value >= 0) || value > 86400.0) {
    throw std::invalid_argument(std::string(name) + ": expected seconds >= 0, got '" + text + "'");
  }
  return value;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + ": missing value");
      return argv[++i];
    };
    if (arg == "--port-file") {
      options.port_file = value();
    } else if (arg == "--https-port") {
      options.https_port = static_cast<int>(parse_long(arg, value(), 0, 65535));
    } else if (arg == "--http-port") {
      options.http_port = static_cast<int>(parse_long(arg, value(), 0, 65535));
    } else if (arg == "--cert") {
      options.cert = value();
    } else if (arg == "--key") {
      options.key = value();
    } else if (arg == "--bind") {
      options.bind = value();
    } else if (arg == "--interval") {
      options.interval = static_cast<int>(parse_long(arg, value(), 0, 3600));
    } else if (arg == "--expires-in") {
      options.expires_in = static_cast<int>(parse_long(arg, value(), 1, 86400));
    } else if (arg == "--token-lifetime") {
      options.token_lifetime = static_cast<int>(parse_long(arg, value(), 1, 30 * 86400));
    } else if (arg == "--verification-uri") {
      options.verification_uri = value();
    } else if (arg == "--auto-approve-after") {
      options.auto_approve_after = parse_seconds(arg, value());
    } else if (arg == "--strict-rotation") {
      options.strict_rotation = true;
    } else if (arg == "--page-size") {
      options.page_size = static_cast<int>(parse_long(arg, value(), 1, 1000));
    } else if (arg == "--events") {
      options.events = static_cast<int>(parse_long(arg, value(), 0, 100000));
    } else if (arg == "--threads") {
      options.threads = static_cast<int>(parse_long(arg, value(), 4, 16384));
    } else if (arg == "--log") {
      options.log = true;
    } else {
      throw std::invalid_argument("unknown option '" + std::string(arg) + "'");
    }
  }
  if (options.port_file.empty()) throw std::invalid_argument("--port-file is required");
  if (options.cert.empty() != options.key.empty()) {
    throw std::invalid_argument("--cert and --key go together");
  }
  if (options.verification_uri.empty()) {
    throw std::invalid_argument("--verification-uri: must not be empty");
  }
  return options;
}

}  // namespace g2m::sim
