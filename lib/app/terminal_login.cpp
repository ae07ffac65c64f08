#include "app/terminal_login.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/logger.h"
#include "http/curl_http.h"
#include "identity/endpoints.h"
#include "identity/identity_requests.h"
#include "identity/sign_in.h"
#include "identity/token_store.h"
#include "loop/event_loop.h"

namespace g2m {

namespace {

// Reads standard input on its own thread, a line at a time, and posts each line (or the end of
// the input) to the loop. poll() with a short timeout lets it stop when the sign-in is over.
class LineReader {
 public:
  using OnLine = std::function<void(std::optional<std::string>)>;  // nullopt: end of input
  LineReader(EventLoop& loop, OnLine on_line) : loop_(loop), on_line_(std::move(on_line)) {}
  ~LineReader() { stop(); }

  void start() {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::string buffer;
    while (!stopping_) {
      pollfd fd{STDIN_FILENO, POLLIN, 0};
      const int ready = ::poll(&fd, 1, 200);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!buffer.empty()) post(std::move(buffer));
        post(std::nullopt);
        return;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      // An address is a few KiB at most; a runaway line is cut rather than held.
      if (buffer.size() > 64 * 1024) buffer.erase(0, buffer.size() - 64 * 1024);
      for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
        post(buffer.substr(0, nl));
        buffer.erase(0, nl + 1);
      }
    }
  }
  void post(std::optional<std::string> line) {
    loop_.post([this, line = std::move(line)] { on_line_(line); });
  }

  EventLoop& loop_;
  OnLine on_line_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The terminal front-end of one sign-in: prints what the driver says, feeds it the pasted
// address, stores the tokens; `result` is the exit status once done.
class TerminalSignIn : private SignInEvents {
 public:
  TerminalSignIn(const Config& config, const AccountConfig& account, EventLoop& loop, Http& http,
                 TokenStore& store, Logger& log, bool browser)
      : resolver_(platform_options(config), http, log),
        account_(account),
        loop_(loop),
        store_(store),
        browser_(browser || account.sign_in_method == SignInMethodSetting::browser),
        options_(identity_options(config, account)),
        driver_(SignInContext{options_, loop, http, resolver_, log, std::random_device{}()}, *this),
        reader_(loop, [this](std::optional<std::string> line) { on_line(std::move(line)); }) {}

  void start() {
    if (browser_ && !driver_.browser_possible()) {
      finish(1,
             "The browser sign-in is not available for this account (protocol v1, or no "
             "redirect_uri under provider oidc).");
      return;
    }
    driver_.start(browser_ ? SignInMethod::browser : SignInMethod::device_code,
                  account_.sign_in_method == SignInMethodSetting::auto_);
  }
  void interrupt() { finish(1, "interrupted; nothing was stored"); }
  int result() const { return result_.value_or(1); }
  void stop_reading() { reader_.stop(); }

 private:
  void finish(int status, const std::string& message) {
    if (result_) return;
    driver_.cancel();
    result_ = status;
    (status == 0 ? std::cout : std::cerr) << message << std::endl;
    loop_.stop();
  }

  void code_issued(const SignInPrompt& prompt) override {
    if (prompt.method == SignInMethod::device_code) {
      std::cout << prompt.message << std::endl;
      return;
    }
    std::cout << "To sign in, open this address in a browser (on any phone or computer):\n\n"
              << prompt.sign_in_url.value_or("") << "\n\n"
              << "Sign in, then copy the address the browser ends at (it starts with "
              << account_.redirect_uri.value_or("the redirect URI")
              << "?code=) and paste it here:" << std::endl;
    reader_.start();
  }
  void interval_changed(const SignInPrompt&) override {}
  void transient_error(const AuthFailure& f, Millis retry_in) override {
    std::cerr << "The identity platform could not be reached (" << f.error << ": " << f.description
              << "); retrying in " << (retry_in.count() + 999) / 1000 << " s" << std::endl;
  }
  void switching_to_browser(const AuthFailure& refusal) override {
    std::cerr << "The device code was refused: " << refusal.description << std::endl
              << "Switching to the browser sign-in." << std::endl;
  }
  void redemption_failed(const AuthFailure&) override {}  // the complete outcome says it
  void redeemed(const TokenSet& tokens) override { store(tokens); }
  void approved(TokenSet tokens) override {
    if (result_ || !store(tokens)) return;
    std::string who =
        tokens.user ? " as " + tokens.user->name + " (" + tokens.user->username + ")" : "";
    finish(0, "Signed in" + who + "; the tokens are stored in " +
                  store_.file_for(account_.name).string());
  }
  void ended(SignInEnd end, SignInMethod /*method*/, const AuthFailure* failure) override {
    switch (end) {
      case SignInEnd::declined:
        finish(1, "The sign-in was declined.");
        return;
      case SignInEnd::code_expired:
        finish(1, "The sign-in expired unused.");
        return;
      case SignInEnd::error:
      case SignInEnd::blocked:
        finish(1, "Sign-in failed: " + (failure ? failure->error + ": " + failure->description
                                                : std::string("unknown error")));
        return;
    }
  }

  bool store(const TokenSet& tokens) {
    // A running agent may hold the lock for a moment: wait for it (the terminal may block).
    const auto saved =
        store_.save_waiting(account_.name, token_binding(options_), tokens, Seconds(10));
    if (!saved.ok) finish(1, "Signed in, but the tokens could not be stored: " + saved.message);
    return saved.ok;
  }

  void on_line(std::optional<std::string> line) {
    if (result_) return;
    if (!line) {
      finish(1, "No address was given (end of input); nothing was stored.");
      return;
    }
    if (line->find_first_not_of(" \t\r") == std::string::npos) return;  // an empty line
    // The pasted address is a secret: it goes to the driver, never to the terminal or a log.
    driver_.complete(*line, [this](CompleteOutcome outcome) {
      if (outcome.ok || result_) return;
      std::cerr << outcome.error << std::endl;
      if (driver_.prompt() != nullptr) std::cerr << "Paste the address again:" << std::endl;
    });
  }

  EndpointResolver resolver_;
  const AccountConfig& account_;
  EventLoop& loop_;
  TokenStore& store_;
  bool browser_;
  const IdentityOptions options_;
  SignInDriver driver_;
  LineReader reader_;
  std::optional<int> result_;
};

}  // namespace

int terminal_login(const Config& config, const std::string& name, bool force, bool browser) {
  const AccountConfig* account = config.find_account(name);
  if (account == nullptr) {
    std::cerr << "graph2mqtt: unknown account `" << name << "`" << std::endl;
    return 2;
  }
  Logger log(config.log_level);
  TokenStore store(config.storage_dir);
  try {
    if (auto warning = store.prepare()) log.warn(*warning);
  } catch (const std::exception& e) {
    std::cerr << "graph2mqtt: " << e.what() << std::endl;
    return 1;
  }
  if (store.exists(name) && !force) {
    std::cerr << "graph2mqtt: account `" << name << "` already has tokens in "
              << store.file_for(name).string() << "; pass --force to replace them" << std::endl;
    return 1;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  RealClock clock;
  CurlHttpOptions options;
  options.timeout = config.identity.timeout;
  options.extra_ca = config.identity.ca;
  options.proxy = config.identity.proxy;
  CurlHttp http(options, log);
  EventLoop loop(clock, http);
  TerminalSignIn sign_in(config, *account, loop, http, store, log, browser);

  // SIGUSR2 ends this thread only once `stopping` is set: one sent from outside (kill -USR2) is
  // ignored, so Ctrl-C still works after it (as in the agent's own signal thread).
  std::atomic<bool> stopping{false};
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR2) {
        if (stopping.load()) return;
        continue;
      }
      loop.post([&] { sign_in.interrupt(); });
    }
  });
  sign_in.start();
  loop.run();
  sign_in.stop_reading();
  stopping.store(true);
  pthread_kill(signals.native_handle(), SIGUSR2);
  signals.join();
  return sign_in.result();
}

}  // namespace g2m
