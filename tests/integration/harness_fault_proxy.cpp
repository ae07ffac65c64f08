#include "harness_fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "harness_util.h"

namespace g2m::test {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Closes a socket so that the peer gets a RST, not a FIN.
void close_with_reset(int fd) {
  if (fd < 0) return;
  const linger abort{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  ::close(fd);
}

// Writes all of `data`; false when the peer is gone.
bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(int target_port) : target_port_(target_port) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) fail("fault proxy: cannot create a pipe");
  listen_on_port();
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake();
  thread_.join();
  for (auto& pair : pairs_) close_pair(pair, false);
  if (listener_ >= 0) ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::string FaultProxy::https_url() const {
  return "https://127.0.0.1:" + std::to_string(port_);
}

void FaultProxy::listen_on_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address = loopback(port_);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    fail("fault proxy: cannot listen on 127.0.0.1:" + std::to_string(port_) + ": " + why);
  }
  port_ = ntohs(address.sin_port);
  listener_ = fd;
}

void FaultProxy::wake() {
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(wake_[1], &byte, 1);
}

void FaultProxy::refuse() {
  std::unique_lock lock(mutex_);
  refuse_ = true;
  wake();
  done_.wait(lock, [this] { return !refuse_; });
}

void FaultProxy::accept_again() {
  std::lock_guard lock(mutex_);
  if (listener_ < 0) listen_on_port();  // a new fd: safe while the loop polls the old set
  wake();
}

void FaultProxy::close_pair(Pair& pair, bool reset) {
  if (reset) {
    close_with_reset(pair.client);
    close_with_reset(pair.upstream);
  } else {
    if (pair.client >= 0) ::close(pair.client);
    if (pair.upstream >= 0) ::close(pair.upstream);
  }
  pair.client = pair.upstream = -1;
}

void FaultProxy::run() {
  std::vector<pollfd> fds;
  char buffer[64 * 1024];
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      if (refuse_) {
        if (listener_ >= 0) ::close(listener_);
        listener_ = -1;
        for (auto& pair : pairs_) close_pair(pair, true);
        pairs_.clear();
        refuse_ = false;
        done_.notify_all();
      }
      fds.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      fds.push_back({listener_, POLLIN, 0});  // a negative fd is ignored by poll()
      for (const auto& pair : pairs_) {
        fds.push_back({pair.client_done ? -1 : pair.client, POLLIN, 0});
        fds.push_back({pair.upstream_done ? -1 : pair.upstream, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;

    std::lock_guard lock(mutex_);
    if (fds[0].revents != 0) {
      while (::read(wake_[0], buffer, sizeof buffer) > 0) {
      }
    }
    if (fds[1].revents != 0 && listener_ >= 0 && fds[1].fd == listener_) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in target = loopback(target_port_);
        if (upstream >= 0 &&
            ::connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0) {
          pairs_.push_back({client, upstream});
          ++accepted_;
        } else {
          if (upstream >= 0) ::close(upstream);
          close_with_reset(client);
        }
      }
    }
    // Pairs added above were not polled; the first fds.size()/2 - 1 pairs were.
    const std::size_t polled = (fds.size() - 2) / 2;
    for (std::size_t i = 0; i < polled && i < pairs_.size(); ++i) {
      auto& pair = pairs_[i];
      for (int side = 0; side < 2; ++side) {
        const auto& p = fds[2 + 2 * i + static_cast<std::size_t>(side)];
        if (p.fd < 0 || p.revents == 0 || pair.client < 0) continue;
        const int from = side == 0 ? pair.client : pair.upstream;
        const int to = side == 0 ? pair.upstream : pair.client;
        const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
        if (n > 0) {
          if (!send_all(to, buffer, static_cast<std::size_t>(n))) close_pair(pair, true);
        } else if (n == 0) {
          // A FIN: pass it on, keep the other direction open.
          ::shutdown(to, SHUT_WR);
          (side == 0 ? pair.client_done : pair.upstream_done) = true;
          if (pair.client_done && pair.upstream_done) close_pair(pair, false);
        } else if (errno != EINTR && errno != EAGAIN) {
          close_pair(pair, true);  // a reset on one side is a reset on the other
        }
      }
    }
    std::erase_if(pairs_, [](const Pair& pair) { return pair.client < 0; });
  }
}

}  // namespace g2m::test
