// A real Mosquitto broker on free loopback ports, with its own config, log and folder.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "harness_process.h"
#include "harness_util.h"

namespace g2m::test {

struct MosquittoOptions {
  std::map<std::string, std::string> users{};  // user -> password: a password file, no anonymous
  std::string acl{};                           // acl_file content ("" = no ACL)
  std::optional<Pki> tls{};                    // adds a TLS listener (server.pem/key of this PKI)
  bool require_client_cert = false;            // on the TLS listener
  bool websockets = false;                     // adds a websockets listener
  std::string extra_conf{};                    // more mosquitto.conf lines (global section)
};

class Mosquitto {
 public:
  // Picks the ports, writes the config and starts the broker (see start()).
  explicit Mosquitto(MosquittoOptions options = {});
  ~Mosquitto();
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  int port() const { return port_; }
  int tls_port() const { return tls_port_; }  // 0 without a TLS listener
  int ws_port() const { return ws_port_; }    // 0 without a websockets listener
  std::string url() const;                    // mqtt://127.0.0.1:PORT
  std::string tls_url() const;                // mqtts://127.0.0.1:TLS_PORT
  std::string ws_url() const;                 // ws://127.0.0.1:WS_PORT

  // Starts the broker on the same ports as before and returns once every listener accepts
  // connections (deadline 10 s); fails the test with the broker log otherwise.
  void start();
  void stop();   // SIGTERM and wait for the exit (SIGKILL after 10 s)
  void kill9();  // a crash: no clean disconnects, the retained store is lost (persistence false)
  bool running();

  std::string log_text() const;
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  void write_config();

  MosquittoOptions options_;
  TempDir dir_{"g2m-mosquitto"};
  int port_ = 0;
  int tls_port_ = 0;
  int ws_port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace g2m::test
