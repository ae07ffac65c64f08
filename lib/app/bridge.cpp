#include "app/bridge.h"

#include <algorithm>
#include <map>
#include <random>

#include "common/time_format.h"
#include "common/version.h"
#include "json/json.h"
#include "mqtt/topics.h"

namespace g2m {

namespace {
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// A command's reply, sent at most once, and sent anyway (an error) when the account lets go of
// the request without an outcome: a reload that stops or restarts the account cancels what it
// had under way, and a request never goes unanswered (docs/mqtt-api.md "Commands").
class ReplyOnce {
 public:
  ReplyOnce(Reply reply, std::weak_ptr<bool> bridge_alive)
      : reply_(std::move(reply)), bridge_alive_(std::move(bridge_alive)) {}
  ~ReplyOnce() {
    if (!reply_ || bridge_alive_.expired()) return;
    auto reply = std::move(reply_);
    reply(CommandResult::failure(
        "the account was restarted, removed or signed out before the outcome was known; send "
        "the request again"));
  }
  ReplyOnce(const ReplyOnce&) = delete;
  ReplyOnce& operator=(const ReplyOnce&) = delete;
  void operator()(CommandResult result) {
    if (!reply_) return;
    auto reply = std::move(reply_);
    reply_ = nullptr;
    reply(std::move(result));
  }

 private:
  Reply reply_;
  std::weak_ptr<bool> bridge_alive_;
};
}  // namespace

Http::RequestId Bridge::AccountHttp::send(HttpRequest request, Callback callback) {
  if (closed_) return 0;  // never an id of the inner client's: cancelling it does nothing
  auto id = std::make_shared<RequestId>(0);
  const RequestId sent =
      inner_.send(std::move(request), [this, id, callback = std::move(callback)](HttpResponse r) {
        open_.erase(*id);
        callback(std::move(r));
      });
  *id = sent;
  open_.insert(sent);
  return sent;
}

void Bridge::AccountHttp::cancel(RequestId id) {
  if (open_.erase(id) != 0) inner_.cancel(id);
}

void Bridge::AccountHttp::close() {
  closed_ = true;
  for (const RequestId id : open_) inner_.cancel(id);
  open_.clear();
}

Bridge::Bridge(std::shared_ptr<const Config> config, EventLoop& loop, Http& http, MqttClient& mqtt,
               TokenStore& store, Logger& log)
    : initial_(std::move(config)),
      config_(initial_),
      loop_(loop),
      http_(http),
      store_(store),
      log_(log),
      session_(loop, mqtt, log),
      endpoints_(platform_options(*initial_), http, log),
      derived_(std::make_unique<DerivedTopics>(*initial_, session_)),
      discovery_(*initial_, loop, session_, mqtt, log),
      base_(initial_->mqtt.base_topic),
      reply_policy_{initial_->mqtt.base_topic, initial_->homeassistant_prefix},
      token_file_timer_(loop) {
  // auth/qr and the plain sub-topics follow auth/code, auth/state and graph/R wherever set.
  session_.on_retained_set([this](const std::string& topic, const std::string& payload,
                                  std::optional<SystemTime> expires_at) {
    derived_->on_retained(topic, payload, expires_at);
  });
  std::random_device random;
  seed_ = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  std::size_t index = 0;
  for (const auto& account : config_->accounts) {
    accounts_.push_back(make_account(config_, account, index));
    ++index;
  }
}

Bridge::Running Bridge::make_account(const std::shared_ptr<const Config>& config,
                                     const AccountConfig& account, std::size_t index) {
  Running r;
  r.config = config;
  r.http = std::make_unique<AccountHttp>(http_);
  AccountContext ctx{loop_,         *r.http,     session_, store_, endpoints_,
                     log_,          *config,     base_,    index,  config->accounts.size(),
                     seed_ + index, seed_ % 3600};
  r.account = std::make_unique<Account>(account, ctx);
  return r;
}

Bridge::~Bridge() {
  alive_.reset();  // replies dropped from here on stay unsent: the session is going too
}

Account* Bridge::find_account(const std::string& name) {
  for (auto& r : accounts_) {
    if (r.account->name() == name) return r.account.get();
  }
  return nullptr;
}

std::optional<CommandResult> Bridge::sign_in_cap_reached() const {
  const auto cap = static_cast<std::size_t>(config_->identity.max_pending_sign_ins);
  std::size_t under_way = 0;
  std::optional<SteadyTime> first_expiry;
  for (const auto& r : accounts_) {
    const Account* a = r.account.get();
    if (!a->signing_in()) continue;
    ++under_way;
    if (auto at = a->code_expires_at(); at && (!first_expiry || *at < *first_expiry)) {
      first_expiry = at;
    }
  }
  if (under_way < cap) return std::nullopt;
  // A place frees up at the latest when the first waiting code expires.
  long long wait = 10;
  if (first_expiry) {
    const auto left = std::chrono::ceil<Seconds>(*first_expiry - loop_.clock().steady());
    wait = std::max<long long>(1, left.count());
  }
  return CommandResult::failure(
      std::to_string(under_way) + " sign-ins are already waiting for a user (at most " +
          std::to_string(cap) + " at once: identity.max_pending_sign_ins); try again later",
      wait);
}

void Bridge::publish_info() {
  session_.set_retained(topics::bridge_info(base_), json::object([&](json::Fields& f) {
                          f.str("version", kVersion).str("base_topic", base_);
                          std::vector<std::string> names;
                          for (const auto& a : config_->accounts) names.push_back(a.name);
                          f.strings("accounts", names);
                          f.str("started_at", started_at_);
                        }));
}

void Bridge::start() {
  session_.set_retained(topics::bridge_state(base_), R"({"state":"online"})");
  started_at_ = format_utc(loop_.clock().system());
  publish_info();
  std::vector<std::string> filters = {topics::bridge_request_filter(base_)};
  for (auto& f : discovery_.filters()) filters.push_back(std::move(f));
  discovery_.start();
  for (auto& r : accounts_) r.account->start();
  if (config_->mqtt.tls) {
    session_.on_connect_failure([this](const std::string&) { diagnose_tls(); });
  }
  session_.start([this](MqttMessage m) { on_message(std::move(m)); }, std::move(filters));
  watch_token_files();
}

void Bridge::diagnose_tls() {
  // Paho only says "no answer" when a TLS connection fails; a handshake with libcurl against the
  // same host, CA and client certificate says why (unknown CA, name mismatch, no certificate).
  const auto& m = config_->mqtt;
  HttpRequest probe;
  probe.url = "https://" + (m.host.find(':') != std::string::npos ? "[" + m.host + "]" : m.host) +
              ":" + std::to_string(m.port) + "/";
  probe.connect_only = true;
  probe.timeout = Seconds(10);
  if (m.ca) probe.ca_file = m.ca->string();
  if (m.cert) probe.client_cert = m.cert->string();
  if (m.key) probe.client_key = m.key->string();
  http_.send(std::move(probe), [this, server = m.server](HttpResponse r) {
    if (r.error == TransportError::tls) {
      log_.error("mqtt: the TLS connection to ", server, " failed: ", r.error_message);
    } else if (!r.ok()) {
      log_.error("mqtt: cannot reach ", server, ": ", r.error_message);
    } else {
      log_.error("mqtt: the TLS handshake with ", server,
                 " succeeds, but the broker closes the connection (a client certificate it "
                 "refuses, or an MQTT-level refusal)");
    }
  });
}

void Bridge::watch_token_files() {
  // `graph2mqtt login` may write a token file for an account that has none: notice it within 2 s.
  token_file_timer_.start_after(Seconds(1), [this] {
    for (auto& r : accounts_) {
      if (r.account->state() == AuthState::signed_out) r.account->check_token_file();
    }
    watch_token_files();
  });
}

void Bridge::stop() {
  token_file_timer_.cancel();
  for (auto& r : accounts_) r.account->shutdown();
  // A rotated refresh token exists nowhere else: wait a little for a lock `graph2mqtt login`
  // holds rather than exit without it.
  for (auto& r : accounts_) r.account->store_before_exit(Millis(1000));
  session_.shutdown(topics::bridge_state(base_), Millis(1000));
}

void Bridge::reconfigure(std::shared_ptr<const Config> fresh, const ReloadPlan& plan) {
  auto is_in = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  std::vector<Running> old = std::move(accounts_);
  accounts_.clear();
  // Removed and changed accounts stop first, their topics cleared through the derived topics of
  // the running configuration (auth/qr, the plain sub-topics).
  std::vector<Running> kept;
  // Tokens a restarted account could not store yet go to its successor, never lost (a rotated
  // refresh token exists nowhere else).
  std::map<std::string, Unsaved> handed;
  for (auto& r : old) {
    const std::string name = r.account->name();
    if (is_in(plan.removed, name)) {
      log_.info("SIGHUP: account ", name, " removed: stopping it and clearing its topics");
      retire(std::move(r), /*clear=*/true);
    } else if (is_in(plan.changed, name)) {
      log_.info("SIGHUP: the settings of account ", name, " changed: restarting it");
      // The graph/R topics of resources the account no longer has go, and those whose plain
      // sub-topics (`fields`) change, which go with them; the others are the new account's to
      // publish again.
      const AccountConfig* now = fresh->find_account(name);
      for (const auto& resource : r.config->find_account(name)->resources) {
        const bool same = std::any_of(
            now->resources.begin(), now->resources.end(),
            [&](const auto& n) { return n.name == resource.name && n.fields == resource.fields; });
        if (!same) session_.set_retained(topics::graph(base_, name, resource.name), "");
      }
      if (auto unsaved = retire(std::move(r), /*clear=*/false)) {
        handed.emplace(name, std::move(*unsaved));
      }
    } else {
      kept.push_back(std::move(r));
    }
  }
  config_ = std::move(fresh);
  derived_ = std::make_unique<DerivedTopics>(*config_, session_);
  std::vector<std::pair<Account*, std::optional<TokenSet>>> to_start;
  std::size_t index = 0;
  for (const auto& account : config_->accounts) {
    auto it = std::find_if(kept.begin(), kept.end(),
                           [&](const Running& r) { return r.account->name() == account.name; });
    if (it != kept.end()) {
      accounts_.push_back(std::move(*it));
      kept.erase(it);
    } else {
      if (is_in(plan.added, account.name)) {
        log_.info("SIGHUP: account ", account.name, " added: starting it");
      }
      accounts_.push_back(make_account(config_, account, index));
      Account* started = accounts_.back().account.get();
      std::optional<TokenSet> unsaved;
      if (auto h = handed.find(account.name); h != handed.end()) {
        if (h->second.binding == started->binding()) {
          unsaved = std::move(h->second.tokens);
        } else {
          log_.warn(account.name, ": tokens that could not be stored are dropped: the account now ",
                    "signs in to another app registration, tenant or authority");
        }
      }
      to_start.emplace_back(started, std::move(unsaved));
    }
    ++index;
  }
  for (auto& [a, unsaved] : to_start) a->start(std::move(unsaved));
  publish_info();
  discovery_.reconfigure(*config_);
}

std::optional<Bridge::Unsaved> Bridge::retire(Running running, bool clear) {
  Account& account = *running.account;
  account.shutdown();  // one more attempt to store what is only in memory
  std::optional<Unsaved> unsaved;
  if (auto tokens = account.take_unsaved_tokens()) {
    unsaved = Unsaved{account.binding(), std::move(*tokens)};
  }
  running.http->close();  // nothing it still has to do reaches the network, nor answers
  if (clear) {
    const std::string name = account.name();
    session_.set_retained(topics::auth_code(base_, name), "");
    session_.set_retained(topics::auth_state(base_, name), "");
    for (const auto& resource : running.config->find_account(name)->resources) {
      session_.set_retained(topics::graph(base_, name, resource.name), "");
    }
  }
  // `running` goes here: the account, then its requests, then the configuration it points into
  // (a discovery under way keeps only callbacks that check whether their driver is alive).
  return unsaved;
}

void Bridge::send_reply(const std::string& action, const std::optional<std::string>& response_topic,
                        const std::optional<std::string>& correlation_data,
                        const std::string& payload) {
  OutgoingMessage fixed;
  fixed.topic = topics::bridge_response(base_, action);
  fixed.payload = payload;
  session_.send(fixed);
  if (response_topic) {
    OutgoingMessage direct;
    direct.topic = *response_topic;
    direct.payload = payload;
    direct.correlation_data = correlation_data;
    session_.send(std::move(direct));
  }
}

void Bridge::on_message(MqttMessage message) {
  if (discovery_.on_message(message)) return;
  const auto action = topics::request_action(base_, message.topic);
  if (!action) return;
  if (message.retained) {
    // A retained request would run again at every reconnection.
    log_.warn("ignoring the retained request on ", message.topic,
              " (clear it with an empty retained message)");
    return;
  }
  auto parsed = parse_request(reply_policy_, message);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    log_.warn("request ", *action, ": ", error->message);
    // A refused response topic gets no reply of its own; other errors go there too.
    const bool topic_allowed =
        message.response_topic && response_topic_allowed(reply_policy_, *message.response_topic);
    send_reply(*action, topic_allowed ? message.response_topic : std::nullopt,
               message.correlation_data,
               error_reply(error->message, std::nullopt, error->transaction));
    return;
  }
  dispatch(std::move(std::get<Request>(parsed)));
}

void Bridge::dispatch(Request request) {
  const std::string action = request.action;
  const auto transaction = request.transaction;
  const auto response_topic = request.response_topic;
  const auto correlation = request.correlation_data;
  auto reply = [this, action, transaction, response_topic, correlation](CommandResult result) {
    const std::string payload = result.ok ? ok_reply(result.data_json, transaction)
                                          : error_reply(result.error, result.retry_in, transaction);
    send_reply(action, response_topic, correlation, payload);
  };
  auto parsed = parse_command(request);
  if (auto* error = std::get_if<CommandError>(&parsed); error && error->unknown_action) {
    reply(CommandResult::failure(error->message));
    return;
  }

  if (std::holds_alternative<Command>(parsed) &&
      std::holds_alternative<StatusCommand>(std::get<Command>(parsed)) && !request.account) {
    std::string data = "{\"accounts\":{";
    bool first = true;
    for (auto& r : accounts_) {
      const Account* a = r.account.get();
      if (!first) data += ',';
      first = false;
      rapidjson::StringBuffer key;
      json::Writer w(key);
      json::write_string(w, a->name());
      data += std::string(key.GetString(), key.GetSize()) + ":" + a->state_json();
    }
    data += "}}";
    reply(CommandResult::success(data));
    return;
  }

  Account* account = nullptr;
  if (request.account) {
    account = find_account(*request.account);
    if (account == nullptr) {
      reply(CommandResult::failure("unknown account `" + *request.account + "`"));
      return;
    }
  } else if (accounts_.size() == 1) {
    account = accounts_.front().account.get();
  } else {
    reply(CommandResult::failure("`account` is required when several accounts are configured"));
    return;
  }
  // A field of the wrong type is reported once the account is known (an unknown account is
  // the first thing to fix).
  if (auto* error = std::get_if<CommandError>(&parsed)) {
    reply(CommandResult::failure(error->message));
    return;
  }
  run(*account, std::move(std::get<Command>(parsed)), reply);
}

void Bridge::run(Account& account, Command command, const Reply& direct) {
  auto guard = std::make_shared<ReplyOnce>(direct, alive_);
  const Reply reply = [guard](CommandResult result) { (*guard)(std::move(result)); };
  std::visit(Overloaded{
                 [&](const StatusCommand&) { reply(CommandResult::success(account.state_json())); },
                 [&](const LoginCommand& c) {
                   if (account.login_would_start(c.force)) {
                     if (auto refused = sign_in_cap_reached()) {
                       reply(*refused);
                       return;
                     }
                   }
                   account.login(c.force, c.method, reply);
                 },
                 [&](const LogoutCommand&) { account.logout(reply); },
                 [&](const CancelCommand&) { account.cancel(reply); },
                 [&](const CompleteCommand& c) { account.complete(c.url, reply); },
                 [&](const RefreshCommand& c) { account.refresh(c.resource, reply); },
                 [&](const GraphCommand& c) { account.graph_get(c.path, reply); },
             },
             command);
}

}  // namespace g2m
