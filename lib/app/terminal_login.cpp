#include "app/terminal_login.h"

#include <csignal>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/logger.h"
#include "http/curl_http.h"
#include "identity/device_flow.h"
#include "identity/endpoints.h"
#include "identity/identity_requests.h"
#include "identity/token_store.h"
#include "loop/event_loop.h"

namespace g2m {

namespace {

// Drives one sign-in on the event loop; `result` is the exit status once `done`.
class TerminalSignIn {
 public:
  TerminalSignIn(const Config& config, const AccountConfig& account, EventLoop& loop, Http& http,
                 TokenStore& store, Logger& log)
      : resolver_(config, loop, http, log),
        config_(config),
        account_(account),
        loop_(loop),
        http_(http),
        store_(store),
        timer_(loop),
        jitter_(std::random_device{}()) {}

  void start() { request_code(); }
  void interrupt() { finish(1, "interrupted; nothing was stored"); }
  bool done() const { return result_.has_value(); }
  int result() const { return result_.value_or(1); }

 private:
  void finish(int status, const std::string& message) {
    if (result_) return;
    timer_.cancel();
    if (request_) http_.cancel(*request_);
    result_ = status;
    (status == 0 ? std::cout : std::cerr) << message << std::endl;
    loop_.stop();
  }

  void request_code() {
    resolver_.resolve(account_, [this](EndpointResolver::Result result) {
      if (auto* f = std::get_if<AuthFailure>(&result)) {
        on_failure(*f);
        return;
      }
      endpoints_ = std::get<Endpoints>(result);
      requested_at_ = loop_.clock().steady();
      requested_at_system_ = loop_.clock().system();
      request_ =
          http_.send(device_code_request(config_, account_, *endpoints_), [this](HttpResponse r) {
            request_.reset();
            on_code(std::move(r));
          });
    });
  }

  void on_failure(const AuthFailure& f) {
    if (f.kind == AuthFailure::Kind::transient) {
      const Millis delay = std::max<Millis>(
          backoff_delay(failures_++, Seconds(5), DeviceFlow::kMaxBackoff, jitter_.next()),
          f.retry_after.value_or(Seconds(0)));
      std::cerr << "The identity platform could not be reached (" << f.error << ": "
                << f.description << "); retrying in " << delay.count() / 1000 << " s" << std::endl;
      timer_.start_after(delay, [this] { request_code(); });
      return;
    }
    finish(1, "Sign-in failed: " + f.error + ": " + f.description);
  }

  void on_code(HttpResponse response) {
    // The URL the request went to: only a loopback http:// identity server may send http:// pages.
    auto outcome = parse_device_code_response(
        response, endpoints_ ? std::string_view(endpoints_->device_authorization) : "");
    if (auto* f = std::get_if<AuthFailure>(&outcome)) {
      on_failure(*f);
      return;
    }
    flow_.emplace(std::move(std::get<DeviceCode>(outcome)), requested_at_, loop_.clock().steady(),
                  requested_at_system_, jitter_.next() * 1e18);
    std::cout << flow_->code().message << std::endl;
    schedule_poll();
  }

  void schedule_poll() {
    if (flow_->next_poll_at() >= flow_->expires_at()) {
      timer_.start_at(flow_->expires_at(), [this] { finish(1, "The code expired unused."); });
      return;
    }
    timer_.start_at(flow_->next_poll_at(), [this] {
      flow_->poll_sent();
      request_ = http_.send(
          device_token_request(config_, account_, *endpoints_, flow_->code().device_code),
          [this](HttpResponse r) {
            request_.reset();
            on_poll(std::move(r));
          });
    });
  }

  void on_poll(HttpResponse response) {
    auto d = flow_->on_poll_result(parse_token_response(response), loop_.clock().steady());
    using Kind = DeviceFlow::Decision::Kind;
    switch (d.kind) {
      case Kind::poll_again:
        if (d.failure) {
          std::cerr << "Polling failed (" << d.failure->error << "); trying again" << std::endl;
        }
        schedule_poll();
        return;
      case Kind::declined:
        finish(1, "The sign-in was declined.");
        return;
      case Kind::expired:
        finish(1, "The code expired unused.");
        return;
      case Kind::failed:
        finish(1, "Sign-in failed: " + d.failure->error + ": " + d.failure->description);
        return;
      case Kind::approved:
        break;
    }
    TokenSet tokens = make_token_set(std::move(*d.tokens), loop_.clock().system());
    const auto saved = store_.save(account_.name, token_binding(config_, account_), tokens);
    if (!saved.ok) {
      finish(1, "Signed in, but the tokens could not be stored: " + saved.message);
      return;
    }
    std::string who =
        tokens.user ? " as " + tokens.user->name + " (" + tokens.user->username + ")" : "";
    finish(0, "Signed in" + who + "; the tokens are stored in " +
                  store_.file_for(account_.name).string());
  }

  EndpointResolver resolver_;
  std::optional<Endpoints> endpoints_;
  const Config& config_;
  const AccountConfig& account_;
  EventLoop& loop_;
  Http& http_;
  TokenStore& store_;
  Timer timer_;
  Jitter jitter_;
  std::optional<DeviceFlow> flow_;
  std::optional<Http::RequestId> request_;
  SteadyTime requested_at_{};
  SystemTime requested_at_system_{};
  int failures_ = 0;
  std::optional<int> result_;
};

}  // namespace

int terminal_login(const Config& config, const std::string& name, bool force) {
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
  TerminalSignIn sign_in(config, *account, loop, http, store, log);

  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR2) loop.post([&] { sign_in.interrupt(); });
  });
  sign_in.start();
  loop.run();
  pthread_kill(signals.native_handle(), SIGUSR2);
  signals.join();
  return sign_in.result();
}

}  // namespace g2m
