// A child process of the test: its own log file, killed and reaped when it goes out of scope.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace g2m::test {

class Process {
 public:
  // Starts argv (argv[0] a path, or a name looked up in PATH) with the test's environment plus
  // `env` (overriding), stdin from `stdin_path` (default /dev/null; a FIFO is opened read-write
  // so the child never blocks on it nor sees its end), stdout and stderr appended to `log_file`.
  // The child is SIGKILLed if the test program dies first.
  Process(std::vector<std::string> argv, std::filesystem::path log_file,
          std::map<std::string, std::string> env = {},
          const std::filesystem::path& stdin_path = "/dev/null");
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();  // SIGKILL and reap whatever is still running

  pid_t pid() const { return pid_; }
  bool running();  // false once it has exited (and been reaped)
  void terminate(int signal = SIGTERM);
  // Waits for the exit: the exit code, or 128 + signal number when a signal ended it (as a shell
  // reports it); nullopt if it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  int kill9();  // SIGKILL, reap, return the status as wait_exit does

  std::string log_text() const;
  const std::filesystem::path& log_path() const { return log_path_; }
  std::string command_line() const;

 private:
  std::vector<std::string> argv_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The throw-away certificates of scripts/make-test-ca.
struct Pki {
  std::filesystem::path dir{};
  std::filesystem::path ca{}, ca_key{};               // the test CA
  std::filesystem::path server_cert{}, server_key{};  // 127.0.0.1, ::1, localhost
  std::filesystem::path client_cert{}, client_key{};  // CN=graph2mqtt, signed by the CA
  std::filesystem::path other_ca{};                   // an unrelated CA, for "wrong CA" tests
  std::filesystem::path other_server_cert{}, other_server_key{};  // the same names, other CA
};

// Runs G2M_SOURCE_DIR/scripts/make-test-ca into `dir`.
Pki make_pki(const std::filesystem::path& dir);

}  // namespace g2m::test
