// g2m-simulator: the simulated Microsoft identity platform and Graph for tests and the demo.
#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "options.h"
#include "simulator.h"
#include "util.h"

namespace {

using g2m::sim::Options;

void configure(httplib::Server& server, const Options& options, const char* scheme) {
  // httplib closes a keep-alive connection after 5 requests or 5 s idle, and each open
  // connection holds a pool thread: both limits would distort connection-reuse tests.
  server.set_keep_alive_max_count(1000000);
  server.set_keep_alive_timeout(300);
  // Each kept-alive connection holds a worker thread: enough for a peer that opens one or more
  // per account at N = 1,000 (msal-node opened ~1,600; with 1,024 threads the rest timed out).
  // --threads lowers it where few connections are open (the integration tests).
  server.new_task_queue = [threads = options.threads] { return new httplib::ThreadPool(threads); };
  // Without TCP_NODELAY a request on a kept-alive connection waits ~40 ms for delayed ACKs.
  server.set_tcp_nodelay(true);
  server.set_payload_max_length(1024 * 1024);
  if (options.log) {
    // Method, path and status only: never a query, header or body (tokens, device codes).
    server.set_logger([scheme](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "g2m-simulator: %s %s %s %d\n", scheme, req.method.c_str(),
                   req.path.c_str(), res.status);
    });
  }
}

int bind_listener(httplib::Server& server, const std::string& host, int port) {
  const int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return bound;
  // Debian's libcpp-httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled
  // in): a client that connects hundreds of times at once gets SYNs dropped and 1 s, 3 s, ...
  // retransmissions. listen() again on the same socket raises the backlog to the kernel's limit.
  const int listener = g2m::sim::find_socket(bound, -1);
  if (listener >= 0) ::listen(listener, SOMAXCONN);
  return bound;
}

bool write_port_file(const std::string& file, int https_port, int http_port) {
  g2m::sim::Json json;
  json.begin_object().key("https");
  if (https_port > 0) {
    json.num(https_port);
  } else {
    json.null();
  }
  json.field_num("http", http_port).end_object();
  // Written atomically: tests poll for this file and must never read half of it.
  const auto temp = file + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << json.text() << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(temp.c_str(), file.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = g2m::sim::parse_options(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "g2m-simulator: %s\n%s", e.what(), g2m::sim::kUsage);
    return 2;
  }

  // Signals are taken synchronously by the main thread; every thread started later inherits
  // the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  httplib::Server http;
  std::unique_ptr<httplib::SSLServer> https;
  if (!options.cert.empty()) {
    https = std::make_unique<httplib::SSLServer>(options.cert.c_str(), options.key.c_str());
    if (!https->is_valid()) {
      std::fprintf(stderr, "g2m-simulator: cannot load --cert %s / --key %s\n",
                   options.cert.c_str(), options.key.c_str());
      return 1;
    }
  }
  configure(http, options, "http");
  if (https) configure(*https, options, "https");

  const int http_port = bind_listener(http, options.bind, options.http_port);
  if (http_port <= 0) {
    std::fprintf(stderr, "g2m-simulator: cannot listen on %s:%d (http)\n", options.bind.c_str(),
                 options.http_port);
    return 1;
  }
  int https_port = 0;
  if (https) {
    https_port = bind_listener(*https, options.bind, options.https_port);
    if (https_port <= 0) {
      std::fprintf(stderr, "g2m-simulator: cannot listen on %s:%d (https)\n", options.bind.c_str(),
                   options.https_port);
      return 1;
    }
  }

  g2m::sim::Simulator simulator(options, http_port);
  simulator.install(http, false);
  if (https) {
    simulator.install(*https, true);
    simulator.attach_tls(*https);
  }

  std::atomic<int> finished{0};
  const int listeners = https ? 2 : 1;
  std::thread http_thread([&] {
    http.listen_after_bind();
    ++finished;
  });
  std::thread https_thread;
  if (https) {
    https_thread = std::thread([&] {
      https->listen_after_bind();
      ++finished;
    });
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(http.is_running() && (!https || https->is_running())) && finished == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int status = 0;
  if (!(http.is_running() && (!https || https->is_running()))) {
    std::fprintf(stderr, "g2m-simulator: a listener failed to start\n");
    status = 1;
  } else if (!write_port_file(options.port_file, https_port, http_port)) {
    std::fprintf(stderr, "g2m-simulator: cannot write %s\n", options.port_file.c_str());
    status = 1;
  } else {
    if (options.log) {
      std::fprintf(stderr, "g2m-simulator: listening on http %d, https %d\n", http_port,
                   https_port);
    }
    const timespec tick{0, 200 * 1000 * 1000};
    while (true) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) break;
      // A listener that stopped on its own is a failure.
      if (finished != 0) {
        status = 1;
        break;
      }
    }
  }

  http.stop();
  if (https) https->stop();
  // Worker threads idle on keep-alive connections only notice stop() after their 300 s
  // keep-alive timeout, so wait briefly and then leave without joining them.
  const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (finished < listeners && std::chrono::steady_clock::now() < grace) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::fflush(stderr);
  if (finished < listeners) std::_Exit(status);
  http_thread.join();
  if (https_thread.joinable()) https_thread.join();
  return status;
}
