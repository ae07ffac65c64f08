#include "harness_mosquitto.h"

#include <unistd.h>

#include <sstream>

namespace g2m::test {

namespace {

const char* const kMosquitto = "/usr/sbin/mosquitto";
const char* const kMosquittoPasswd = "/usr/bin/mosquitto_passwd";

}  // namespace

Mosquitto::Mosquitto(MosquittoOptions options) : options_(std::move(options)) {
  port_ = free_port();
  if (options_.tls) tls_port_ = free_port();
  if (options_.websockets) ws_port_ = free_port();
  write_config();
  start();
}

Mosquitto::~Mosquitto() {
  if (process_) process_->kill9();
}

std::string Mosquitto::url() const {
  return "mqtt://127.0.0.1:" + std::to_string(port_);
}
std::string Mosquitto::tls_url() const {
  return "mqtts://127.0.0.1:" + std::to_string(tls_port_);
}
std::string Mosquitto::ws_url() const {
  return "ws://127.0.0.1:" + std::to_string(ws_port_);
}

void Mosquitto::write_config() {
  std::ostringstream conf;
  conf << "persistence false\n"
       << "log_dest stderr\n"
       << "log_type all\n"
       << "log_timestamp_format %H:%M:%S\n";
  // Run as root (a container), Mosquitto would switch to the `mosquitto` user, who cannot read
  // this 0700 folder.
  if (::geteuid() == 0) conf << "user root\n";
  if (options_.users.empty()) {
    conf << "allow_anonymous true\n";
  } else {
    const auto passwords = dir() / "passwd";
    bool first = true;
    for (const auto& [user, password] : options_.users) {
      std::vector<std::string> argv{kMosquittoPasswd, "-b"};
      if (first) argv.emplace_back("-c");
      argv.insert(argv.end(), {passwords.string(), user, password});
      Process tool(argv, dir() / "mosquitto_passwd.log");
      if (tool.wait_exit(10s) != 0) fail("mosquitto_passwd failed:\n" + tool.log_text());
      first = false;
    }
    conf << "allow_anonymous false\n"
         << "password_file " << passwords.string() << "\n";
  }
  if (!options_.acl.empty()) {
    write_file(dir() / "acl", options_.acl);
    conf << "acl_file " << (dir() / "acl").string() << "\n";
  }
  conf << options_.extra_conf << "\n";
  conf << "listener " << port_ << " 127.0.0.1\n";
  if (options_.tls) {
    conf << "listener " << tls_port_ << " 127.0.0.1\n"
         << "cafile " << options_.tls->ca.string() << "\n"
         << "certfile " << options_.tls->server_cert.string() << "\n"
         << "keyfile " << options_.tls->server_key.string() << "\n"
         << "require_certificate " << (options_.require_client_cert ? "true" : "false") << "\n";
  }
  if (options_.websockets) {
    conf << "listener " << ws_port_ << " 127.0.0.1\n"
         << "protocol websockets\n";
  }
  write_file(dir() / "mosquitto.conf", conf.str());
}

void Mosquitto::start() {
  if (process_ && process_->running()) fail("Mosquitto::start: the broker is already running");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{kMosquitto, "-c", (dir() / "mosquitto.conf").string()},
      dir() / "mosquitto.log");
  std::vector<int> ports{port_};
  if (tls_port_ != 0) ports.push_back(tls_port_);
  if (ws_port_ != 0) ports.push_back(ws_port_);
  const bool up = poll_until(
      [&] {
        if (!process_->running()) return true;
        for (int p : ports) {
          if (!port_open(p)) return false;
        }
        return true;
      },
      10s);
  if (!up || !process_->running()) {
    fail("Mosquitto did not start on port " + std::to_string(port_) + "; config:\n" +
         read_file(dir() / "mosquitto.conf") + "\nlog:\n" + log_text());
  }
}

void Mosquitto::stop() {
  if (!process_) return;
  process_->terminate(SIGTERM);
  if (!process_->wait_exit(10s)) process_->kill9();
}

void Mosquitto::kill9() {
  if (process_) process_->kill9();
}

bool Mosquitto::running() {
  return process_ && process_->running();
}

std::string Mosquitto::log_text() const {
  return read_file(dir() / "mosquitto.log");
}

}  // namespace g2m::test
