#include "harness_process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "harness_util.h"

extern char** environ;

namespace g2m::test {

namespace {

std::string resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(0, colon)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
  }
  return program;
}

std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (!extra.contains(std::string(text.substr(0, text.find('='))))) result.emplace_back(text);
  }
  for (const auto& [name, value] : extra) result.push_back(name + "=" + value);
  return result;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

int shell_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::filesystem::path log_file,
                 std::map<std::string, std::string> env, const std::filesystem::path& stdin_path)
    : argv_(std::move(argv)), log_path_(std::move(log_file)) {
  if (argv_.empty()) fail("Process: empty argv");
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::string program = resolve(argv_[0]);
  std::vector<std::string> args = argv_;
  std::vector<std::string> envs = environment_with(env);
  std::vector<char*> arg_pointers = pointers(args);
  std::vector<char*> env_pointers = pointers(envs);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd =
      ::open(stdin_path.c_str(), (stdin_path == "/dev/null" ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) fail("Process: cannot open " + log_path_.string());
  const pid_t parent = ::getpid();

  // Signals stay blocked until the child has reset its handlers: a SIGTERM arriving before
  // execve() must not run the test program's own handlers (doctest's) in the child.
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_ = ::fork();
  if (pid_ == 0) {
    for (int signal = 1; signal < NSIG; ++signal) {
      struct sigaction action {};
      action.sa_handler = SIG_DFL;
      ::sigaction(signal, &action, nullptr);
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // The test's own sockets (Paho, curl) must not live on in the child.
    ::close_range(3, ~0U, 0);
    ::execve(program.c_str(), arg_pointers.data(), env_pointers.data());
    static const char message[] = "harness: exec failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ::close(log_fd);
  ::close(null_fd);
  if (pid_ < 0) fail("Process: fork failed for " + command_line());
}

Process::Process(Process&& other) noexcept
    : argv_(std::move(other.argv_)),
      log_path_(std::move(other.log_path_)),
      pid_(std::exchange(other.pid_, -1)),
      status_(other.status_) {}

Process::~Process() {
  if (pid_ > 0 && !status_) kill9();
}

bool Process::running() {
  if (pid_ <= 0 || status_) return false;
  int wait_status = 0;
  const pid_t result = ::waitpid(pid_, &wait_status, WNOHANG);
  if (result == pid_) {
    status_ = shell_status(wait_status);
    return false;
  }
  return result == 0;
}

void Process::terminate(int signal) {
  if (running()) ::kill(pid_, signal);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  poll_until([this] { return !running(); }, timeout);
  return status_;
}

int Process::kill9() {
  if (pid_ <= 0) return -1;
  if (!status_) {
    ::kill(pid_, SIGKILL);
    int wait_status = 0;
    while (::waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    status_ = shell_status(wait_status);
  }
  return *status_;
}

std::string Process::log_text() const {
  return read_file(log_path_);
}

std::string Process::command_line() const {
  std::string result;
  for (const auto& arg : argv_) result += (result.empty() ? "" : " ") + arg;
  return result;
}

Pki make_pki(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  Process script({std::string(G2M_SOURCE_DIR) + "/scripts/make-test-ca", dir.string()},
                 dir / "make-test-ca.log");
  const auto status = script.wait_exit(60s);
  if (status != 0) fail("make-test-ca failed:\n" + script.log_text());
  return Pki{.dir = dir,
             .ca = dir / "ca.pem",
             .ca_key = dir / "ca.key",
             .server_cert = dir / "server.pem",
             .server_key = dir / "server.key",
             .client_cert = dir / "client.pem",
             .client_key = dir / "client.key",
             .other_ca = dir / "other-ca.pem",
             .other_server_cert = dir / "other-server.pem",
             .other_server_key = dir / "other-server.key"};
}

}  // namespace g2m::test
