#include "harness_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <doctest/doctest.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace g2m::test {

void fail(const std::string& message) {
  FAIL(message);
  throw std::runtime_error(message);  // FAIL throws; this line only satisfies [[noreturn]]
}

namespace {

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  std::string pattern = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) fail("cannot create a folder like " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("G2M_KEEP_TEST_DIRS");
  if (keep != nullptr && std::string_view(keep) == "1") {
    std::cerr << "kept test folder " << path_ << '\n';
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

int free_port() {
  Socket s;
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof address;
  if (s.fd() < 0 || ::bind(s.fd(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    fail("cannot find a free loopback port");
  }
  return ntohs(address.sin_port);
}

bool port_open(int port) {
  Socket s;
  sockaddr_in address = loopback(port);
  return s.fd() >= 0 &&
         ::connect(s.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

std::string unique_id(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::filesystem::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) fail("cannot write " + file.string());
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!done()) {
    if (SteadyClock::now() >= deadline) return false;
    // A polling step of a deadline-bounded wait, for states nothing notifies us of (a file, a
    // process exit): not a guess at how long something takes.
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

rapidjson::Document try_parse_json(std::string_view text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  return document;
}

rapidjson::Document parse_json(std::string_view text) {
  rapidjson::Document document = try_parse_json(text);
  if (document.HasParseError()) {
    fail("not JSON (" + std::string(rapidjson::GetParseError_En(document.GetParseError())) +
         " at offset " + std::to_string(document.GetErrorOffset()) + "): '" + std::string(text) +
         "'");
  }
  return document;
}

std::string json_str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return {};
  auto member = v.FindMember(key);
  if (member == v.MemberEnd() || !member->value.IsString()) return {};
  return {member->value.GetString(), member->value.GetStringLength()};
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

SilentListener::SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
  if (fd_ < 0) fail("SilentListener: socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    fail("SilentListener: cannot listen on loopback");
  }
  port_ = ntohs(address.sin_port);
}

SilentListener::~SilentListener() {
  for (int c : held_) ::close(c);
  ::close(fd_);
}

bool SilentListener::wait_connections(std::size_t n, std::chrono::milliseconds timeout) {
  return poll_until(
      [&] {
        pollfd p{fd_, POLLIN, 0};
        while (::poll(&p, 1, 0) == 1) {
          const int c = ::accept(fd_, nullptr, nullptr);
          if (c < 0) break;
          held_.push_back(c);
        }
        return held_.size() >= n;
      },
      timeout);
}

}  // namespace g2m::test
