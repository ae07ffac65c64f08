#pragma once

#include <memory>
#include <string>
#include <vector>

#include "account/account.h"
#include "common/logger.h"
#include "config/config.h"
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
// requests to them (typed commands, CONTRACT §2). Everything here runs on the loop thread.
class Bridge {
 public:
  Bridge(const Config& config, EventLoop& loop, Http& http, MqttClient& mqtt, TokenStore& store,
         Logger& log);
  ~Bridge();

  // Publishes bridge state and info, starts every account, connects to the broker.
  void start();
  // Ends pending sign-ins (reason shutdown), publishes offline, disconnects.
  void stop();

  MqttSession& session() { return session_; }
  Account* find_account(const std::string& name);

 private:
  void on_message(MqttMessage message);
  void dispatch(Request request);
  void run(Account& account, Command command, const Reply& reply);
  void send_reply(const std::string& action, const std::optional<std::string>& response_topic,
                  const std::optional<std::string>& correlation_data, const std::string& payload);
  // An error reply when identity.max_pending_sign_ins accounts are already signing in.
  std::optional<CommandResult> sign_in_cap_reached() const;
  void watch_token_files();
  void diagnose_tls();

  const Config& config_;
  EventLoop& loop_;
  Http& http_;
  Logger& log_;
  MqttSession session_;
  EndpointResolver endpoints_;
  DerivedTopics derived_;
  DiscoverySync discovery_;
  std::vector<std::unique_ptr<Account>> accounts_;
  std::string base_;
  ReplyPolicy reply_policy_;
  Timer token_file_timer_;
};

}  // namespace g2m
