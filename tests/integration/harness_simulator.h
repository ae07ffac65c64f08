// The simulated Microsoft identity platform and Graph (G2M_SIMULATOR_BIN), and plain HTTP calls
// to its control API.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness_process.h"
#include "harness_util.h"

namespace g2m::test {

bool simulator_available();  // G2M_SIMULATOR_BIN exists (for doctest::skip)

// status 0: no HTTP answer at all (`error` says why).
struct HttpReply {
  long status = 0;
  std::string body{};
  std::string error{};
};
// Blocking libcurl calls, no proxy, 10 s timeout.
HttpReply http_get(const std::string& url);
HttpReply http_post(const std::string& url, const std::string& json_body);

// GET /_sim/counters; a field the simulator did not send is -1.
struct SimulatorCounters {
  long devicecode = -1;  // requests.devicecode
  long token = -1;       // requests.token
  long refresh = -1;     // requests.refresh
  long graph = -1;       // requests.graph
  long interval_violations = -1;
  long slow_down_sent = -1;
  long rotated_token_reuse = -1;
  long tcp_connections = -1;
  long tls_handshakes = -1;
  std::string json{};  // the whole answer
};

class Simulator {
 public:
  // Starts the simulator with --port-file --cert --key (the PKI's server certificate) and
  // `extra_args` (e.g. {"--interval", "1"}); returns once the port file is written (10 s).
  explicit Simulator(const Pki& pki, std::vector<std::string> extra_args = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  int https_port() const { return https_port_; }
  int http_port() const { return http_port_; }
  std::string https_url() const;  // https://127.0.0.1:PORT (identity.authority)
  std::string http_url() const;   // http://127.0.0.1:PORT (control API)

  // Control API; each fails the test unless the simulator answers 2xx.
  void approve(const std::string& user_code, const std::string& name = "Adele Vance",
               const std::string& username = "adele@contoso.com");
  void decline(const std::string& user_code);
  SimulatorCounters counters();
  void config(const std::string& json);
  void fail(const std::string& json);
  void expire_tokens();

  // Any control call, any status (path like "/_sim/approve", on the HTTP port).
  HttpReply post(const std::string& path, const std::string& json = "{}");
  HttpReply get(const std::string& path);

  void stop();  // SIGTERM, wait (SIGKILL after 5 s)
  Process& process() { return *process_; }
  std::string log_text() const { return process_->log_text(); }

 private:
  void control(const std::string& path, const std::string& json);

  TempDir dir_{"g2m-simulator"};
  std::unique_ptr<Process> process_;
  int https_port_ = 0;
  int http_port_ = 0;
};

}  // namespace g2m::test
