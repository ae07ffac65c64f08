// A loopback TCP forwarder placed between the agent and the simulator, to stage the network
// faults a server cannot stage on itself: nothing listening (connection refused) and every open
// connection reset at once. It forwards bytes and never looks inside them, so TLS passes through
// it end to end (the agent still verifies the simulator's certificate).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace g2m::test {

class FaultProxy {
 public:
  // Listens on 127.0.0.1 (a free port) and forwards every connection to 127.0.0.1:target_port.
  explicit FaultProxy(int target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string https_url() const;  // https://127.0.0.1:PORT

  // Stops listening and resets (RST) every open connection: from now on a connect is refused.
  void refuse();
  // Listens again, on the same port.
  void accept_again();
  // Connections accepted so far.
  long accepted() const { return accepted_; }

 private:
  struct Pair {
    int client = -1;
    int upstream = -1;
    bool client_done = false;    // the client sent FIN (passed on as a FIN upstream)
    bool upstream_done = false;  // the same, the other way
  };
  void run();
  void listen_on_port();
  void wake();
  void close_pair(Pair& pair, bool reset);

  int target_port_;
  int port_ = 0;
  int wake_[2] = {-1, -1};        // a self-pipe: commands interrupt poll()
  std::mutex mutex_;              // guards listener_, pairs_ and the commands below
  std::condition_variable done_;  // a command was carried out
  int listener_ = -1;
  std::vector<Pair> pairs_;
  bool refuse_ = false;
  bool stop_ = false;
  std::atomic<long> accepted_{0};
  std::thread thread_;
};

}  // namespace g2m::test
