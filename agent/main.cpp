// graph2mqtt: the command line and the wiring. Everything else lives in lib/.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "app/bridge.h"
#include "app/privileges.h"
#include "app/service_notifier.h"
#include "app/terminal_login.h"
#include "common/clock.h"
#include "common/logger.h"
#include "common/process_hardening.h"
#include "common/version.h"
#include "config/config.h"
#include "config/config_compare.h"
#include "http/curl_http.h"
#include "identity/token_store.h"
#include "loop/event_loop.h"
#include "mqtt/paho_client.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/graph2mqtt/config.yaml";

const char* const kUsage = R"(Usage:
  graph2mqtt [--config PATH]                   run the agent until SIGTERM/SIGINT
  graph2mqtt --check-config [--config PATH]    validate the configuration and exit
  graph2mqtt login ACCOUNT [--browser] [--force] [--config PATH]
                                               sign ACCOUNT in from this terminal
  graph2mqtt --version | --help

Options:
  -c, --config PATH   configuration file (default /etc/graph2mqtt/config.yaml)
      --check-config  validate and exit: 0 valid, 2 invalid (warnings go to stderr)
      --force         with login: replace tokens the account already has
      --browser       with login: the browser sign-in (for tenants that block the device
                      code): open the printed address, sign in, paste the address the
                      browser ends at
  -V, --version       print the version
  -h, --help          print this help

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
Signals: SIGTERM/SIGINT end pending sign-ins, publish offline and exit 0; SIGHUP reloads
the configuration (a file that is not valid is refused and the running one kept): only
the accounts whose settings changed restart, unless a global setting changed (mqtt,
identity, storage, homeassistant), which restarts them all.
)";

struct Options {
  std::string config = kDefaultConfig;
  bool check_config = false;
  bool force = false;
  bool browser = false;
  std::optional<std::string> login_account;
};

int usage_error(const std::string& message) {
  std::cerr << "graph2mqtt: " << message << "\n\n" << kUsage;
  return 2;
}

// Blocks the termination signals in every thread (Paho's threads inherit the mask) and turns
// them into loop tasks from one waiting thread: handlers never touch state.
// SIGUSR2 wakes the thread to end it, but only once stopping_ is set: a SIGUSR2 from outside
// (kill -USR2) is ignored, so SIGTERM still works after one.
class SignalThread {
 public:
  explicit SignalThread(std::function<void(int)> on_signal) {
    sigset_t set = signals();
    thread_ = std::thread([this, set, on_signal = std::move(on_signal)] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGUSR2) {
          if (stopping_.load()) return;  // our own stop request
          continue;                      // someone else's: not ours to act on
        }
        on_signal(sig);
      }
    });
  }
  ~SignalThread() {
    stopping_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&set, s);
    return set;
  }
  static void block() {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
  }

 private:
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Runs the agent on `config` until SIGTERM/SIGINT (returns nullopt) or until SIGHUP brings a
// valid new configuration whose global settings changed (returns it; the caller runs again with
// it). A SIGHUP that changes only accounts (or log.level) is applied by the running bridge,
// account by account; one with a bad file keeps the running configuration and logs why.
std::optional<g2m::Config> run_until_reload(const g2m::Config& config,
                                            const std::string& config_path, int& exit_status) {
  g2m::Logger log(config.log_level);
  g2m::TokenStore store(config.storage_dir);
  try {
    if (auto warning = store.prepare()) log.warn(*warning);
  } catch (const std::exception& e) {
    log.error(e.what());
    exit_status = 1;
    return std::nullopt;
  }
  g2m::RealClock clock;
  g2m::CurlHttpOptions http_options;
  http_options.timeout = config.identity.timeout;
  http_options.extra_ca = config.identity.ca;
  http_options.proxy = config.identity.proxy;
  g2m::CurlHttp http(http_options, log);
  g2m::EventLoop loop(clock, http);
  g2m::PahoMqttClient mqtt(config.mqtt, log);
  g2m::Bridge bridge(std::make_shared<const g2m::Config>(config), loop, http, mqtt, store, log);
  g2m::ServiceNotifier notifier(loop);
  std::optional<g2m::Config> next;

  SignalThread signals([&](int sig) {
    if (sig == SIGTERM || sig == SIGINT) {
      loop.post([&, sig] {
        log.info("stopping (", sig == SIGTERM ? "SIGTERM" : "SIGINT", ")");
        notifier.stopping();
        bridge.stop();
        loop.stop();
      });
    } else if (sig == SIGHUP) {
      loop.post([&] {
        g2m::Config fresh;
        try {
          fresh = g2m::load_config(config_path);
        } catch (const g2m::ConfigError& e) {
          log.error("SIGHUP: ", config_path, " is not valid; keeping the running configuration:");
          for (const auto& line : e.errors()) log.error("  ", line);
          return;
        }
        for (const auto& w : fresh.warnings) log.warn(w);
        const g2m::ReloadPlan plan = g2m::plan_reload(bridge.config(), fresh);
        notifier.reloading();
        if (plan.full_restart()) {
          // The broker connection, the endpoints or the token folder of every account change.
          std::string why;
          for (const auto& reason : plan.restart_reasons) why += (why.empty() ? "" : ", ") + reason;
          log.info("SIGHUP: reloading ", config_path, ": ", why,
                   " changed; restarting every account");
          next = std::move(fresh);
          bridge.stop();
          loop.stop();
          return;
        }
        log.info("SIGHUP: reloading ", config_path, " account by account: ", plan.added.size(),
                 " added, ", plan.removed.size(), " removed, ", plan.changed.size(), " changed, ",
                 plan.unchanged.size(), " unchanged");
        if (plan.log_level_changed) {
          log.set_level(fresh.log_level);
          log.info("SIGHUP: log level now ", g2m::to_string(fresh.log_level));
        }
        bridge.reconfigure(std::make_shared<const g2m::Config>(std::move(fresh)), plan);
        notifier.ready();
      });
    }
  });

  log.info("graph2mqtt ", g2m::kVersion, " starting with ", config.accounts.size(),
           " account(s); broker ", config.mqtt.server);
  bridge.start();
  notifier.ready();
  loop.run();
  exit_status = 0;
  return next;
}

int run_agent(g2m::Config config, const std::string& config_path) {
  SignalThread::block();
  int exit_status = 0;
  while (auto next = run_until_reload(config, config_path, exit_status)) config = std::move(*next);
  return exit_status;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything reads a password or a token: memory that holds them never ends in a core
  // file, and no other process of this user can attach to read it.
  if (const auto problem = g2m::disable_core_dumps(); !problem.empty()) {
    std::cerr << "graph2mqtt: warning: " << problem << "\n";
  }
  Options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "-V" || arg == "--version") {
      std::cout << "graph2mqtt " << g2m::kVersion << "\n";
      return 0;
    }
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) return usage_error(arg + " needs a PATH");
      options.config = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      options.config = arg.substr(9);
    } else if (arg == "--check-config") {
      options.check_config = true;
    } else if (arg == "--force") {
      options.force = true;
    } else if (arg == "--browser") {
      options.browser = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (!positional.empty()) {
    if (positional[0] != "login") return usage_error("unknown command " + positional[0]);
    if (positional.size() != 2) return usage_error("login needs exactly one ACCOUNT");
    options.login_account = positional[1];
  }
  if (options.force && !options.login_account) return usage_error("--force goes with login");
  if (options.browser && !options.login_account) return usage_error("--browser goes with login");

  g2m::Config config;
  try {
    config = g2m::load_config(options.config);
  } catch (const g2m::ConfigError& e) {
    for (const auto& line : e.errors()) std::cerr << line << "\n";
    return 2;
  }
  for (const auto& w : config.warnings) std::cerr << "warning: " << w << "\n";
  if (options.check_config) {
    std::cerr << options.config << ": configuration is valid\n";
    return 0;
  }
  if (options.login_account) {
    // As root, become the owner of storage.dir first: the service must be able to read the files.
    const auto owner = g2m::become_storage_owner(config.storage_dir, {argv, argv + argc});
    if (owner.refusal) {
      std::cerr << "graph2mqtt login: " << *owner.refusal << "\n";
      return 1;
    }
    if (owner.switched) std::cerr << "graph2mqtt login: running as " << owner.user << "\n";
    return g2m::terminal_login(config, *options.login_account, options.force, options.browser);
  }
  return run_agent(std::move(config), options.config);
}
