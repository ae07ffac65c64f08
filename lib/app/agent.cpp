#include "app/agent.h"

#include <random>

#include "common/time_format.h"
#include "common/version.h"
#include "json/json.h"

namespace g2m {

namespace {
const char* const kActions[] = {"login",   "logout", "cancel", "complete",
                                "refresh", "status", "graph"};

bool known_action(const std::string& action) {
  for (const char* a : kActions) {
    if (action == a) return true;
  }
  return false;
}
}  // namespace

Agent::Agent(const Config& config, EventLoop& loop, Http& http, MqttClient& mqtt, TokenStore& store,
             Logger& log)
    : config_(config),
      loop_(loop),
      http_(http),
      log_(log),
      session_(loop, mqtt, log),
      endpoints_(config, loop, http, log),
      derived_(config, session_),
      discovery_(config, loop, session_, mqtt, log),
      base_(config.mqtt.base_topic),
      token_file_timer_(loop) {
  // auth/qr and the plain sub-topics follow auth/code, auth/state and graph/R wherever set.
  session_.on_retained_set([this](const std::string& topic, const std::string& payload,
                                  std::optional<SystemTime> expires_at) {
    derived_.on_retained(topic, payload, expires_at);
  });
  std::random_device random;
  const std::uint64_t seed = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  std::size_t index = 0;
  for (const auto& account : config_.accounts) {
    AccountContext ctx{loop,         http,       session_, store, endpoints_,
                       log,          config_,    base_,    index, config_.accounts.size(),
                       seed + index, seed % 3600};
    accounts_.push_back(std::make_unique<Account>(account, ctx));
    ++index;
  }
}

Agent::~Agent() = default;

Account* Agent::find_account(const std::string& name) {
  for (auto& a : accounts_) {
    if (a->name() == name) return a.get();
  }
  return nullptr;
}

std::optional<CommandResult> Agent::sign_in_cap_reached() const {
  const auto cap = static_cast<std::size_t>(config_.identity.max_pending_sign_ins);
  std::size_t under_way = 0;
  std::optional<SteadyTime> first_expiry;
  for (const auto& a : accounts_) {
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

void Agent::start() {
  session_.set_retained(base_ + "/bridge/state", R"({"state":"online"})");
  session_.set_retained(base_ + "/bridge/info", json::object([&](json::Fields& f) {
                          f.str("version", kVersion).str("base_topic", base_);
                          std::vector<std::string> names;
                          for (const auto& a : config_.accounts) names.push_back(a.name);
                          f.strings("accounts", names);
                          f.str("started_at", format_utc(loop_.clock().system()));
                        }));
  std::vector<std::string> filters = {base_ + "/bridge/request/#"};
  for (auto& f : discovery_.filters()) filters.push_back(std::move(f));
  discovery_.start();
  for (auto& account : accounts_) account->start();
  if (config_.mqtt.tls) session_.on_connect_failure([this](const std::string&) { diagnose_tls(); });
  session_.start([this](MqttMessage m) { on_message(std::move(m)); }, std::move(filters));
  watch_token_files();
}

void Agent::diagnose_tls() {
  // Paho only says "no answer" when a TLS connection fails; a handshake with libcurl against the
  // same host, CA and client certificate says why (unknown CA, name mismatch, no certificate).
  const auto& m = config_.mqtt;
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

void Agent::watch_token_files() {
  // `graph2mqtt login` may write a token file for an account that has none: notice it within 2 s.
  token_file_timer_.start_after(Seconds(1), [this] {
    for (auto& a : accounts_) {
      if (a->state() == AuthState::signed_out) a->check_token_file();
    }
    watch_token_files();
  });
}

void Agent::stop() {
  token_file_timer_.cancel();
  for (auto& account : accounts_) account->shutdown();
  session_.shutdown(base_ + "/bridge/state", Millis(1000));
}

void Agent::send_reply(const std::string& action, const std::optional<std::string>& response_topic,
                       const std::optional<std::string>& correlation_data,
                       const std::string& payload) {
  OutgoingMessage fixed;
  fixed.topic = base_ + "/bridge/response/" + action;
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

void Agent::on_message(MqttMessage message) {
  if (discovery_.on_message(message)) return;
  const std::string prefix = base_ + "/bridge/request/";
  if (message.topic.compare(0, prefix.size(), prefix) != 0) return;
  if (message.retained) {
    // A retained request would run again at every reconnection.
    log_.warn("ignoring the retained request on ", message.topic,
              " (clear it with an empty retained message)");
    return;
  }
  const std::string action = message.topic.substr(prefix.size());
  auto parsed = parse_request(base_, message);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    log_.warn("request ", action, ": ", error->message);
    // A refused response topic gets no reply of its own; other errors go there too.
    const bool topic_allowed =
        message.response_topic && response_topic_allowed(base_, *message.response_topic);
    send_reply(action, topic_allowed ? message.response_topic : std::nullopt,
               message.correlation_data,
               error_reply(error->message, std::nullopt, error->transaction));
    return;
  }
  dispatch(std::move(std::get<Request>(parsed)));
}

void Agent::dispatch(Request request) {
  const std::string action = request.action;
  const auto transaction = request.transaction;
  const auto response_topic = request.response_topic;
  const auto correlation = request.correlation_data;
  auto reply = [this, action, transaction, response_topic, correlation](CommandResult result) {
    const std::string payload = result.ok ? ok_reply(result.data_json, transaction)
                                          : error_reply(result.error, result.retry_in, transaction);
    send_reply(action, response_topic, correlation, payload);
  };
  if (!known_action(action)) {
    reply(
        CommandResult::failure("unknown action `" + action +
                               "`; the actions are login, logout, cancel, refresh, status, graph"));
    return;
  }
  const auto& body = request.body;

  if (action == "status" && !request.account) {
    std::string data = "{\"accounts\":{";
    bool first = true;
    for (auto& a : accounts_) {
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
    account = accounts_.front().get();
  } else {
    reply(CommandResult::failure("`account` is required when several accounts are configured"));
    return;
  }

  if (action == "status") {
    reply(CommandResult::success(account->state_json()));
  } else if (action == "login") {
    bool force = false;
    const auto it = body.FindMember("force");
    if (it != body.MemberEnd()) {
      if (!it->value.IsBool()) {
        reply(CommandResult::failure("`force` must be true or false"));
        return;
      }
      force = it->value.GetBool();
    }
    std::optional<SignInMethod> method;
    if (const auto m = body.FindMember("method"); m != body.MemberEnd()) {
      if (m->value.IsString()) {
        method = parse_sign_in_method(
            std::string_view(m->value.GetString(), m->value.GetStringLength()));
      }
      if (!method) {
        reply(CommandResult::failure("`method` must be device_code or browser"));
        return;
      }
    }
    if (account->login_would_start(force)) {
      if (auto refused = sign_in_cap_reached()) {
        reply(*refused);
        return;
      }
    }
    account->login(force, method, reply);
  } else if (action == "logout") {
    account->logout(reply);
  } else if (action == "cancel") {
    account->cancel(reply);
  } else if (action == "complete") {
    const auto it = body.FindMember("url");
    if (it == body.MemberEnd() || !it->value.IsString()) {
      reply(CommandResult::failure("`url` is required and must be a string"));
      return;
    }
    account->complete(std::string(it->value.GetString(), it->value.GetStringLength()), reply);
  } else if (action == "refresh") {
    std::optional<std::string> resource;
    const auto it = body.FindMember("resource");
    if (it != body.MemberEnd()) {
      if (!it->value.IsString()) {
        reply(CommandResult::failure("`resource` must be a string"));
        return;
      }
      resource = std::string(it->value.GetString(), it->value.GetStringLength());
    }
    account->refresh(resource, reply);
  } else if (action == "graph") {
    const auto it = body.FindMember("path");
    if (it == body.MemberEnd() || !it->value.IsString()) {
      reply(CommandResult::failure("`path` is required and must be a string"));
      return;
    }
    account->graph_get(std::string(it->value.GetString(), it->value.GetStringLength()), reply);
  }
}

}  // namespace g2m
