// docs/mqtt-api.md "Untrusted input": the MQTT connection never goes through a proxy the
// environment names; §3 identity.proxy: HTTP uses HTTPS_PROXY / NO_PROXY from the environment. Paho
// C 1.3.12 reads the lower-case http_proxy / https_proxy for the broker connection and ignores
// no_proxy; libcurl reads them for HTTP. Here they point at a loopback listener that only counts
// connections and records the request line each one sends (an HTTP proxy sees
// "CONNECT host:port HTTP/1.1").
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "scenario.h"

using namespace g2m::test;

namespace {

// A listener that plays a proxy that never answers: it accepts, records the first line, closes.
class CountingListener {
 public:
  CountingListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~CountingListener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  CountingListener(const CountingListener&) = delete;
  CountingListener& operator=(const CountingListener&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> lines() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  std::size_t connections() const { return lines().size(); }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::string line;
      for (int waited = 0; waited < 2000 && line.find('\n') == std::string::npos; waited += 50) {
        pollfd c{client, POLLIN, 0};
        if (::poll(&c, 1, 50) <= 0) continue;
        char buf[512];
        const ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n <= 0) break;
        line.append(buf, static_cast<std::size_t>(n));
      }
      ::close(client);
      line = line.substr(0, line.find_first_of("\r\n"));
      const std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line.empty() ? "(nothing sent)" : line);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

std::string describe(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// The identity requests go through `proxy` and the broker connection does not (the "proxy"
// never answers, so the login fails).
void check_identity_through(Scenario& s, const CountingListener& proxy) {
  s.wait_online();
  const auto reply = s.display.request("login", R"({"account":"kitchen"})", 60s);
  CHECK(json_str(reply, "status") == "error");
  const std::string simulator = "CONNECT 127.0.0.1:" + std::to_string(s.simulator.https_port());
  const std::string broker = std::to_string(s.broker.port());
  const auto lines = proxy.lines();
  INFO("the proxy saw:\n" << describe(lines));
  CHECK(std::any_of(lines.begin(), lines.end(),
                    [&](const std::string& l) { return l.rfind(simulator, 0) == 0; }));
  CHECK(std::none_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(":" + broker + " ") != std::string::npos;
  }));
}

}  // namespace

TEST_CASE(
    "mqtt: with http_proxy and https_proxy set, the agent connects straight to the broker "
    "and the proxy sees no connection") {
  if (!agent_available()) return;
  CountingListener proxy;
  ScenarioOptions options;
  options.start_agent = false;
  Scenario s(options);
  // The harness's NO_PROXY / no_proxy (loopback) stay: HTTP goes straight to the simulator,
  // so any connection the listener sees is the MQTT connection's.
  s.config.env["http_proxy"] = proxy.url();
  s.config.env["https_proxy"] = proxy.url();
  s.agent = std::make_unique<Agent>(s.config);
  s.wait_online();
  // A sign-in works too (HTTP honours NO_PROXY).
  s.sign_in();
  // And after a reconnection (Paho reads the variables at every connect).
  const auto connects = s.display.connects();
  const auto since = s.display.mark();
  s.broker.stop();
  s.broker.start();
  s.display.wait_connects(connects + 1);
  s.wait_online(since);
  CHECK_MESSAGE(proxy.connections() == 0, "the proxy saw:\n" << describe(proxy.lines()));
}

TEST_CASE(
    "mqtt: https_proxy from the environment still carries the identity requests, never "
    "the broker connection") {
  if (!agent_available()) return;
  CountingListener proxy;
  ScenarioOptions options;
  options.start_agent = false;
  Scenario s(options);
  // No NO_PROXY: libcurl must send the device-code request through the proxy.
  s.config.env = {{"NO_PROXY", ""},
                  {"no_proxy", ""},
                  {"http_proxy", proxy.url()},
                  {"https_proxy", proxy.url()}};
  s.agent = std::make_unique<Agent>(s.config);
  check_identity_through(s, proxy);
}

TEST_CASE("http: identity.proxy carries the identity requests, never the broker connection") {
  if (!agent_available()) return;
  CountingListener proxy;
  ScenarioOptions options;
  options.start_agent = false;
  Scenario s(options);
  s.config.env = {{"NO_PROXY", ""}, {"no_proxy", ""}};
  s.config.identity_extra += "proxy: " + proxy.url() + "\n";
  s.agent = std::make_unique<Agent>(s.config);
  check_identity_through(s, proxy);
}

TEST_CASE("http: an upper-case HTTPS_PROXY carries the identity requests, never the broker's") {
  if (!agent_available()) return;
  CountingListener proxy;
  ScenarioOptions options;
  options.start_agent = false;
  Scenario s(options);
  s.config.env = {{"NO_PROXY", ""}, {"no_proxy", ""}, {"HTTPS_PROXY", proxy.url()}};
  s.agent = std::make_unique<Agent>(s.config);
  check_identity_through(s, proxy);
}
