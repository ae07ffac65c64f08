#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "account/account_payloads.h"
#include "account/sign_out_reason.h"
#include "common/backoff.h"
#include "common/logger.h"
#include "config/config.h"
#include "graph/graph_fetch.h"
#include "graph/resource_poller.h"
#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/sign_in.h"
#include "identity/sign_in_method.h"
#include "identity/token_keeper.h"
#include "identity/token_set.h"
#include "identity/token_store.h"
#include "json/json.h"
#include "loop/event_loop.h"
#include "mqtt/mqtt_session.h"
#include "mqtt/topics.h"

namespace g2m {

// The outcome of a command, for the bridge reply: ok with the `data` JSON, or an error.
struct CommandResult {
  bool ok = true;
  std::string data_json = "{}";
  std::string error;
  std::optional<long long> retry_in;

  static CommandResult success(std::string data) { return {true, std::move(data), {}, {}}; }
  static CommandResult failure(std::string why, std::optional<long long> retry = std::nullopt) {
    return {false, "{}", std::move(why), retry};
  }
};
using Reply = std::function<void(CommandResult)>;

// What an account needs from the agent around it.
struct AccountContext {
  EventLoop& loop;
  Http& http;
  MqttSession& mqtt;
  TokenStore& store;
  EndpointResolver& endpoints;
  Logger& log;
  const Config& config;
  std::string base_topic;
  std::size_t index = 0;  // position in the config: spreads refreshes of many accounts
  std::size_t account_count = 1;
  std::uint64_t seed = 0;            // jitter
  std::uint64_t refresh_offset = 0;  // the same for every account: shifts the refresh slots
};

// One configured account: its sign-in, its tokens and its Graph resources. Lives on the loop
// thread; every state change is published (auth/state, auth/code, events, graph/R).
class Account : private SignInEvents, private TokenEvents, private ResourceSink {
 public:
  Account(const AccountConfig& config, AccountContext context);
  ~Account() override;
  Account(const Account&) = delete;
  Account& operator=(const Account&) = delete;

  const std::string& name() const { return config_.name; }
  AuthState state() const { return state_; }
  // A sign-in is under way: a device code is being requested or waits for the user.
  bool signing_in() const;
  // When the code this account waits with expires (none while it is still being requested).
  std::optional<SteadyTime> code_expires_at() const;
  // A `login` would start a new sign-in (rather than join the one under way or find the
  // account signed in).
  bool login_would_start(bool force) const;

  // Loads stored tokens and publishes the initial retained state (docs/mqtt-api.md "The connection
  // to the broker").
  void start();
  // start(), with the tokens the account this one replaces at a reload could not store yet:
  // they are newer than the file (a rotated refresh token), so they are used and stored.
  void start(std::optional<TokenSet> unsaved);
  // Ends a pending sign-in with reason `shutdown` and clears auth/code.
  void shutdown();
  // After shutdown(): tokens still only in memory, for the account that replaces this one.
  std::optional<TokenSet> take_unsaved_tokens();
  // At the process's exit: stores what is only in memory, waiting up to `wait` for the lock.
  void store_before_exit(Millis wait);
  TokenBinding binding() const;

  // Commands (docs/mqtt-api.md "Commands"). The reply runs when the outcome is known.
  // `method`: the request's, else the account's sign_in_method (auto: the device code, or the
  // browser sign-in once the tenant's policy refused the device code).
  void login(bool force, std::optional<SignInMethod> method, Reply reply);
  // The address a browser sign-in ended at (docs/mqtt-api.md "Commands" complete).
  void complete(const std::string& address, Reply reply);
  void logout(Reply reply);
  void cancel(Reply reply);
  void refresh(const std::optional<std::string>& resource, Reply reply);
  void graph_get(const std::string& path, Reply reply);
  std::string state_json() const;
  bool has_resource(const std::string& name) const;

  // Called about once a second while signed out: picks up a token file that `graph2mqtt login`
  // wrote meanwhile.
  void check_token_file();

 private:
  // sign-in (the driver is SignInDriver; these are its events and the account's glue)
  void start_sign_in(SignInMethod method);
  SignInMethod default_method() const;
  void end_sign_in(SignOutReason reason, bool renewing = false,
                   const AuthFailure* failure = nullptr);
  void reply_waiters(const CommandResult& result);
  void code_issued(const SignInPrompt& prompt) override;
  void interval_changed(const SignInPrompt& prompt) override;
  void transient_error(const AuthFailure& failure, Millis retry_in) override;
  void switching_to_browser(const AuthFailure& refusal) override;
  void redemption_failed(const AuthFailure& failure) override;
  void redeemed(const TokenSet& tokens) override;
  void approved(TokenSet tokens) override;
  void ended(SignInEnd end, SignInMethod method, const AuthFailure* failure) override;

  // tokens (the lifecycle is TokenKeeper's; these are its events and the account's glue)
  // `announce`: a new sign-in (signed_in event); `store`: write them to disk first.
  void adopt_tokens(TokenSet tokens, bool announce, bool store);
  void lose_tokens(SignOutReason reason, const AuthFailure* failure);
  void tokens_refreshed(const TokenSet& tokens) override;
  void token_trouble(const AuthFailure& failure, Millis retry_in) override;
  void refresh_refused(const AuthFailure& failure) override;

  // publishing
  void set_state(AuthState state, std::optional<SignOutReason> reason,
                 const AuthFailure* error = nullptr);
  void publish_state();
  void publish_code();
  void clear_graph_topics();
  void emit(const std::string& event, const std::function<void(json::Fields&)>& fields);
  void emit_auth_error(const AuthFailure& failure, std::optional<Millis> retry_in);
  std::string code_json() const;
  std::string graph_base() const;
  GraphAuth graph_auth();
  std::optional<long long> graph_rate_limited(std::optional<SteadyTime>& last);

  // ResourceSink: the pollers' outcomes, published on graph/R and events.
  const std::string* published_body(const std::string& resource) const override;
  void publish_body(const std::string& resource, const std::string& body) override;
  void graph_error(const std::string& resource, const GraphResult& result,
                   Millis retry_in) override;

  const AccountConfig& config_;
  AccountContext ctx_;
  AccountTopics topics_;
  Jitter jitter_;

  AuthState state_ = AuthState::signed_out;
  SystemTime since_{};
  std::optional<SignOutReason> reason_;
  std::optional<StateError> state_error_;  // auth/state.error while reason_ carries one

  // sign-in in progress
  SignInDriver sign_in_;
  bool forced_ = false;  // a re-sign-in while the old tokens stay in use
  // The tenant's policy refused the device code: under sign_in_method auto, this account's
  // sign-ins are browser sign-ins until the agent restarts (docs/mqtt-api.md "Browser sign-in and
  // tenant policy").
  bool browser_preferred_ = false;
  std::vector<Reply> login_waiters_;
  std::optional<SteadyTime> last_user_login_;

  TokenKeeper keeper_;

  // graph
  std::vector<std::unique_ptr<ResourcePoller>> resources_;
  std::optional<SteadyTime> last_graph_command_;
  std::optional<SteadyTime> last_refresh_command_;
  std::optional<SteadyTime> last_token_refresh_command_;
};

}  // namespace g2m
