// Small helpers shared by the integration-test harness: temporary folders, free ports,
// files, deadlines and JSON. Every helper that cannot do its job fails the running test.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace g2m::test {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Fails the running doctest test case with `message` (never returns).
[[noreturn]] void fail(const std::string& message);

// A fresh folder under /tmp, removed with everything in it unless G2M_KEEP_TEST_DIRS=1.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "g2m-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, read it, close).
int free_port();

// True when something accepts TCP connections on 127.0.0.1:port.
bool port_open(int port);

// A string unique within this test run (and across concurrent runs): prefix-pid-counter.
std::string unique_id(std::string_view prefix);

std::string read_file(const std::filesystem::path& file);  // "" when missing
// ASCII lower case, for case-insensitive checks of messages.
std::string lower(std::string_view text);
void write_file(const std::filesystem::path& file, std::string_view text);

// Polls `done` every few milliseconds until it is true or `timeout` has passed.
// For states the harness cannot be notified of (a process exit, a port, a file).
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// JSON. parse_json fails the test (quoting the text) when `text` is not JSON.
rapidjson::Document parse_json(std::string_view text);
// Parses without failing: a document with HasParseError() set when `text` is not JSON.
rapidjson::Document try_parse_json(std::string_view text);
// The string member `key` of object `v`, or "" when it is missing or not a string.
std::string json_str(const rapidjson::Value& v, const char* key);
// Compact JSON text of a value.
std::string to_json(const rapidjson::Value& v);

// A loopback server that takes TCP connections and never answers: an MQTT connect, an OpenID
// discovery or a TLS handshake to it stays in flight.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }
  // Waits until `n` connections have come in (accepted, held open, never answered).
  bool wait_connections(std::size_t n, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> held_;
};

}  // namespace g2m::test
