#pragma once

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "account/account.h"
#include "common/logger.h"
#include "config/config.h"
#include "config/config_compare.h"
#include "homeassistant/discovery_sync.h"
#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/token_store.h"
#include "loop/event_loop.h"
#include "mqtt/derived_topics.h"
#include "mqtt/mqtt_client.h"
#include "mqtt/mqtt_session.h"
#include "mqtt/request.h"

namespace g2m {

// The running agent's bridge: the broker session, the accounts, and the router of bridge
// requests to them (typed commands, docs/mqtt-api.md "Commands"). Everything here runs on the loop
// thread.
class Bridge {
 public:
  // The bridge keeps `config` for as long as an account built from it lives.
  Bridge(std::shared_ptr<const Config> config, EventLoop& loop, Http& http, MqttClient& mqtt,
         TokenStore& store, Logger& log);
  Bridge(const Config& config, EventLoop& loop, Http& http, MqttClient& mqtt, TokenStore& store,
         Logger& log)
      : Bridge(std::make_shared<const Config>(config), loop, http, mqtt, store, log) {}
  ~Bridge();

  // Publishes bridge state and info, starts every account, connects to the broker.
  void start();
  // Ends pending sign-ins (reason shutdown), publishes offline, disconnects.
  void stop();

  // Applies `fresh` account by account while the broker connection stays up (a reload whose
  // plan_reload(config(), *fresh) asks for no full restart): an unchanged account keeps running
  // as it is (tokens, pending sign-in, Graph schedule); a changed one is stopped as at a shutdown
  // and started again with its new settings; a removed one is stopped and its retained topics
  // cleared; an added one is started. bridge/info and Home Assistant discovery follow.
  void reconfigure(std::shared_ptr<const Config> fresh, const ReloadPlan& plan);
  // The configuration running now.
  const Config& config() const { return *config_; }

  MqttSession& session() { return session_; }
  Account* find_account(const std::string& name);

 private:
  // The Http an account sends through: it remembers the account's requests so that all of them
  // are cancelled when the account goes (their callbacks would reach a dead object), and once
  // closed it sends nothing more (the request is dropped and its callback never runs).
  class AccountHttp final : public Http {
   public:
    explicit AccountHttp(Http& inner) : inner_(inner) {}
    ~AccountHttp() override { close(); }
    AccountHttp(const AccountHttp&) = delete;
    AccountHttp& operator=(const AccountHttp&) = delete;
    RequestId send(HttpRequest request, Callback callback) override;
    void cancel(RequestId id) override;
    void close();

   private:
    Http& inner_;
    std::unordered_set<RequestId> open_;
    bool closed_ = false;
  };
  // An account and what it is built from, destroyed in this order: the account, then its
  // requests (cancelled), then the configuration its references point into.
  struct Running {
    std::shared_ptr<const Config> config;
    std::unique_ptr<AccountHttp> http;
    std::unique_ptr<Account> account;
  };
  Running make_account(const std::shared_ptr<const Config>& config, const AccountConfig& account,
                       std::size_t index);
  // Stops an account for good: a pending sign-in ends as at a shutdown, its requests are
  // cancelled; `clear` also empties its retained topics (a removed account). Returns the tokens
  // it could not store yet, with the binding they belong to.
  struct Unsaved {
    TokenBinding binding;
    TokenSet tokens;
  };
  std::optional<Unsaved> retire(Running running, bool clear);
  void publish_info();
  void on_message(MqttMessage message);
  void dispatch(Request request);
  void run(Account& account, Command command, const Reply& reply);
  void send_reply(const std::string& action, const std::optional<std::string>& response_topic,
                  const std::optional<std::string>& correlation_data, const std::string& payload);
  // An error reply when identity.max_pending_sign_ins accounts are already signing in.
  std::optional<CommandResult> sign_in_cap_reached() const;
  void watch_token_files();
  void diagnose_tls();

  // The configuration the bridge started with: the connection, the endpoint resolver and the
  // discovery settings are its (a reload that changes them restarts the whole bridge).
  std::shared_ptr<const Config> initial_;
  std::shared_ptr<const Config> config_;  // the one running now
  EventLoop& loop_;
  Http& http_;
  TokenStore& store_;
  Logger& log_;
  MqttSession session_;
  EndpointResolver endpoints_;
  std::unique_ptr<DerivedTopics> derived_;
  DiscoverySync discovery_;
  std::vector<Running> accounts_;
  std::string base_;
  ReplyPolicy reply_policy_;
  std::uint64_t seed_ = 0;
  std::string started_at_;
  Timer token_file_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // reset first when it goes
};

}  // namespace g2m
