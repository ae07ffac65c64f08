// The /_sim/ control API used by tests and the demo: JSON in, JSON out.
#include <rapidjson/document.h>

#include <cmath>

#include "simulator.h"
#include "util.h"

namespace g2m::sim {
namespace {

std::string error_json(const std::string& message) {
  return Json().begin_object().field("error", message).end_object().text();
}

std::string ok_json() {
  return Json().begin_object().field_bool("ok", true).end_object().text();
}

const char* state_name(const DeviceCode& code, Clock::time_point now) {
  switch (code.state) {
    case CodeState::redeemed:
      return "redeemed";
    case CodeState::declined:
      return "declined";
    case CodeState::refused:
      return "refused";
    case CodeState::approved:
    case CodeState::pending:
      break;
  }
  if (now >= code.expires_at) return "expired";
  return code.state == CodeState::approved ? "approved" : "pending";
}

// Reads an optional member; false (and a message) when it has the wrong type.
class Reader {
 public:
  explicit Reader(const rapidjson::Value& object) : object_(object) {}

  const rapidjson::Value* find(const char* name) const {
    const auto it = object_.FindMember(name);
    return it == object_.MemberEnd() ? nullptr : &it->value;
  }
  bool string(const char* name, std::optional<std::string>& out) {
    const auto* v = find(name);
    if (v == nullptr) return true;
    if (!v->IsString()) return fail(name, "a string");
    out = std::string(v->GetString(), v->GetStringLength());
    return true;
  }
  bool integer(const char* name, std::optional<std::int64_t>& out, std::int64_t min,
               std::int64_t max) {
    const auto* v = find(name);
    if (v == nullptr) return true;
    if (!v->IsInt64() || v->GetInt64() < min || v->GetInt64() > max) {
      return fail(name, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    out = v->GetInt64();
    return true;
  }
  bool strings(const char* name, std::optional<std::vector<std::string>>& out) {
    const auto* v = find(name);
    if (v == nullptr) return true;
    if (!v->IsArray()) return fail(name, "an array of strings");
    std::vector<std::string> items;
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
      if (!(*v)[i].IsString()) return fail(name, "an array of strings");
      items.emplace_back((*v)[i].GetString(), (*v)[i].GetStringLength());
    }
    out = std::move(items);
    return true;
  }
  bool boolean(const char* name, std::optional<bool>& out) {
    const auto* v = find(name);
    if (v == nullptr) return true;
    if (!v->IsBool()) return fail(name, "true or false");
    out = v->GetBool();
    return true;
  }
  bool fail(const std::string& name, const std::string& expected) {
    message = name + ": expected " + expected;
    return false;
  }

  std::string message;

 private:
  const rapidjson::Value& object_;
};

}  // namespace

void Simulator::handle_control(const Request& req, Response& res) {
  const auto& path = req.path;
  const bool get = req.method == "GET";
  const bool read_only = path == "/_sim/codes" || path == "/_sim/counters" ||
                         path == "/_sim/config" || path == "/_sim/issued" ||
                         path == "/_sim/policy" || path == "/_sim/authorization_codes" ||
                         path == "/_sim/refresh_tokens";
  if (get && !read_only) {
    send_json(res, 405, error_json("use POST for " + path));
    return;
  }
  rapidjson::Document doc;
  if (!get) {
    doc.Parse(req.body.empty() ? "{}" : req.body.c_str());
    if (doc.HasParseError() || !doc.IsObject()) {
      send_json(res, 400, error_json("the body must be a JSON object"));
      return;
    }
  } else {
    doc.SetObject();
  }
  Reader in(doc);
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);

  if (path == "/_sim/counters") {
    send_json(res, 200, counters_json_locked());
  } else if (path == "/_sim/counters/reset") {
    counters_ = Counters{};
    send_json(res, 200, counters_json_locked());
  } else if (path == "/_sim/codes") {
    send_json(res, 200, codes_json_locked(now));
  } else if (path == "/_sim/issued") {
    send_json(res, 200, issued_json_locked());
  } else if (path == "/_sim/approve" || path == "/_sim/decline") {
    std::optional<std::string> user_code, name, username;
    if (!in.string("user_code", user_code) || !in.string("name", name) ||
        !in.string("username", username)) {
      send_json(res, 400, error_json(in.message));
      return;
    }
    if (!user_code) {
      send_json(res, 400, error_json("user_code: required"));
      return;
    }
    User user;
    if (name) user.name = *name;
    if (username) user.username = *username;
    switch (decide_locked(*user_code, path == "/_sim/approve", user, now)) {
      case Decision::done:
        send_json(res, 200, ok_json());
        return;
      case Decision::not_found:
        send_json(res, 404, error_json("unknown user_code"));
        return;
      case Decision::expired:
        send_json(res, 409, error_json("the code has expired"));
        return;
      case Decision::not_pending:
        send_json(res, 409, error_json("the code is no longer pending"));
        return;
    }
  } else if (path == "/_sim/authorize") {
    // The simulated user opens a sign_in_url in a browser: the answer is where the browser ends.
    std::optional<std::string> url, action, name, username;
    if (!in.string("url", url) || !in.string("action", action) || !in.string("name", name) ||
        !in.string("username", username)) {
      send_json(res, 400, error_json(in.message));
      return;
    }
    if (action && *action != "approve" && *action != "decline") {
      send_json(res, 400, error_json("action: expected approve or decline"));
      return;
    }
    static const std::string kSuffix = "/oauth2/v2.0/authorize";
    std::string address = url.value_or("");
    address = address.substr(0, address.find('#'));
    const auto scheme_end = address.find("://");
    const auto path_at =
        scheme_end == std::string::npos ? std::string::npos : address.find('/', scheme_end + 3);
    const auto query_at = address.find('?');
    const auto route =
        path_at == std::string::npos || (query_at != std::string::npos && query_at < path_at)
            ? std::string{}
            : address.substr(
                  path_at, query_at == std::string::npos ? std::string::npos : query_at - path_at);
    const bool routed =
        route.size() > kSuffix.size() + 1 &&
        route.compare(route.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0 &&
        route.find('/', 1) == route.size() - kSuffix.size();
    if (!routed) {
      send_json(res, 400,
                error_json("url: expected the absolute sign_in_url "
                           "(<authority>/<tenant>/oauth2/v2.0/authorize?...)"));
      return;
    }
    const auto tenant = route.substr(1, route.size() - kSuffix.size() - 1);
    const auto params = query_at == std::string::npos
                            ? std::map<std::string, std::string>{}
                            : parse_form(std::string_view(address).substr(query_at + 1));
    std::optional<User> user;
    if (name || username) {
      user = User{};
      if (name) user->name = *name;
      if (username) user->username = *username;
    }
    std::optional<bool> approve;
    if (action) approve = *action == "approve";
    const auto outcome =
        authorize_locked(tenant, params, address.substr(0, path_at), approve, user);
    Json json;
    json.begin_object().field_num("status", outcome.status).key("location");
    if (outcome.location.empty()) {
      json.null();
    } else {
      json.str(outcome.location);
    }
    json.key("error");
    if (outcome.error.empty()) {
      json.null();
    } else {
      json.str(outcome.error);
    }
    json.key("error_codes").begin_array();
    if (outcome.error_code != 0) json.num(outcome.error_code);
    json.end_array().key("error_description");
    if (outcome.description.empty()) {
      json.null();
    } else {
      json.str(outcome.description);
    }
    send_json(res, 200, json.end_object().text());
  } else if (path == "/_sim/policy") {
    if (!get) {
      std::optional<std::string> tenant, device_code, refresh, error;
      std::optional<std::int64_t> device_code_error_code, refresh_error_code;
      std::optional<std::string> description;
      bool ok = in.string("tenant", tenant) && in.string("device_code", device_code) &&
                in.string("refresh", refresh) && in.string("error", error) &&
                in.integer("device_code_error_code", device_code_error_code, 1, 999999999) &&
                in.integer("refresh_error_code", refresh_error_code, 1, 999999999);
      if (ok) {
        const auto* v = in.find("description");
        if (v != nullptr && !v->IsNull()) ok = in.string("description", description);
      }
      if (ok && device_code && *device_code != "allow" && *device_code != "refuse_at_request" &&
          *device_code != "refuse_at_poll") {
        ok = in.fail("device_code", "allow, refuse_at_request or refuse_at_poll");
      }
      if (ok && refresh && *refresh != "allow" && *refresh != "refuse") {
        ok = in.fail("refresh", "allow or refuse");
      }
      if (ok && ((error && error->empty()) || (tenant && tenant->empty()))) {
        ok = in.fail(error && error->empty() ? "error" : "tenant", "a non-empty string");
      }
      if (!ok) {
        send_json(res, 400, error_json(in.message));
        return;
      }
      // The body replaces that tenant's policy as a whole: a missing key is its default.
      TenantPolicy policy;
      if (device_code) policy.device_code = *device_code;
      if (device_code_error_code) policy.device_code_error_code = *device_code_error_code;
      policy.refuse_device_code_refresh = refresh && *refresh == "refuse";
      if (refresh_error_code) policy.refresh_error_code = *refresh_error_code;
      if (error) policy.error = *error;
      policy.description = description;
      policies_[to_lower(tenant.value_or("*"))] = policy;
    }
    send_json(res, 200, policies_json_locked());
  } else if (path == "/_sim/policy/clear") {
    policies_.clear();
    send_json(res, 200, policies_json_locked());
  } else if (path == "/_sim/authorization_codes") {
    send_json(res, 200, authorization_codes_json_locked(now));
  } else if (path == "/_sim/expire_authorization_codes") {
    for (auto& [_, code] : authorization_codes_) {
      code.expires_at = std::min(code.expires_at, now);
      code.expires_at_ms = std::min(code.expires_at_ms, now_ms());
    }
    send_json(res, 200, ok_json());
  } else if (path == "/_sim/refresh_tokens") {
    send_json(res, 200, refresh_tokens_json_locked());
  } else if (path == "/_sim/expire_tokens") {
    for (auto& [_, token] : access_tokens_) token.expires_at = std::min(token.expires_at, now);
    send_json(res, 200, ok_json());
  } else if (path == "/_sim/expire_code") {
    std::optional<std::string> user_code;
    if (!in.string("user_code", user_code) || !user_code) {
      send_json(res, 400, error_json("user_code: required string"));
      return;
    }
    auto* code = find_user_code_locked(*user_code);
    if (code == nullptr) {
      send_json(res, 404, error_json("unknown user_code"));
      return;
    }
    code->expires_at = std::min(code->expires_at, now);
    send_json(res, 200, ok_json());
  } else if (path == "/_sim/revoke_refresh_tokens") {
    for (auto& [_, token] : refresh_tokens_) token.revoked = true;
    send_json(res, 200, ok_json());
  } else if (path == "/_sim/config") {
    if (!get) {
      std::optional<std::int64_t> interval, expires_in, token_lifetime, page_size, events,
          authorization_code_lifetime;
      std::optional<bool> omit_interval, string_numbers, errors_on_200, strict_rotation,
          omit_id_token, decline_browser_sign_in;
      std::optional<std::vector<std::string>> redirect_uris;
      std::optional<std::string> verification_uri;
      bool ok = in.integer("interval", interval, 0, 3600) &&
                in.integer("expires_in", expires_in, 1, 86400) &&
                in.integer("token_lifetime", token_lifetime, 1, 30 * 86400) &&
                in.integer("page_size", page_size, 1, 1000) &&
                in.integer("events", events, 0, 100000) &&
                in.boolean("omit_interval", omit_interval) &&
                in.boolean("string_numbers", string_numbers) &&
                in.boolean("errors_on_200", errors_on_200) &&
                in.boolean("strict_rotation", strict_rotation) &&
                in.boolean("omit_id_token", omit_id_token) &&
                in.integer("authorization_code_lifetime", authorization_code_lifetime, 1, 86400) &&
                in.boolean("decline_browser_sign_in", decline_browser_sign_in) &&
                in.strings("redirect_uris", redirect_uris) &&
                in.string("verification_uri", verification_uri);
      std::optional<std::optional<double>> auto_approve;
      if (ok) {
        if (const auto* v = in.find("auto_approve_after")) {
          if (v->IsNull()) {
            auto_approve = std::optional<double>{};
          } else if (v->IsNumber() && v->GetDouble() >= 0 && v->GetDouble() <= 86400) {
            auto_approve = std::optional<double>{v->GetDouble()};
          } else {
            ok = in.fail("auto_approve_after", "seconds from 0 to 86400, or null");
          }
        }
      }
      std::optional<Presence> presence;
      std::optional<std::string> presence_user;
      if (ok) {
        if (const auto* v = in.find("presence")) {
          Reader p(*v);
          std::optional<std::string> availability, activity;
          if (!v->IsObject() || !p.string("availability", availability) ||
              !p.string("activity", activity) || !p.string("username", presence_user)) {
            ok = in.fail("presence", "{\"availability\":..,\"activity\":..,\"username\":..}");
          } else {
            Presence current = config_.presence;
            if (presence_user) {
              const auto it = config_.user_presence.find(to_lower(*presence_user));
              if (it != config_.user_presence.end()) current = it->second;
            }
            if (availability) current.availability = *availability;
            if (activity) current.activity = *activity;
            presence = current;
          }
        }
      }
      if (ok && verification_uri && verification_uri->empty()) {
        ok = in.fail("verification_uri", "a non-empty URL or \"self\"");
      }
      if (!ok) {
        send_json(res, 400, error_json(in.message));
        return;
      }
      // Validated as a whole before anything changes.
      if (interval) config_.interval = static_cast<int>(*interval);
      if (expires_in) config_.expires_in = static_cast<int>(*expires_in);
      if (token_lifetime) config_.token_lifetime = static_cast<int>(*token_lifetime);
      if (page_size) config_.page_size = static_cast<int>(*page_size);
      if (events) config_.events = static_cast<int>(*events);
      if (omit_interval) config_.omit_interval = *omit_interval;
      if (string_numbers) config_.string_numbers = *string_numbers;
      if (errors_on_200) config_.errors_on_200 = *errors_on_200;
      if (strict_rotation) config_.strict_rotation = *strict_rotation;
      if (omit_id_token) config_.omit_id_token = *omit_id_token;
      if (authorization_code_lifetime) {
        config_.authorization_code_lifetime = static_cast<int>(*authorization_code_lifetime);
      }
      if (decline_browser_sign_in) config_.decline_browser_sign_in = *decline_browser_sign_in;
      if (redirect_uris) config_.redirect_uris = *redirect_uris;
      if (auto_approve) config_.auto_approve_after = *auto_approve;
      if (verification_uri) {
        config_.verification_uri =
            *verification_uri == "self"
                ? "http://127.0.0.1:" + std::to_string(http_port_) + "/devicelogin"
                : *verification_uri;
      }
      if (presence) {
        if (presence_user) {
          config_.user_presence[to_lower(*presence_user)] = *presence;
        } else {
          config_.presence = *presence;
        }
      }
    }
    send_json(res, 200, config_json_locked());
  } else if (path == "/_sim/fail") {
    Failure failure;
    std::optional<std::string> endpoint, retry_after, body, error, description, content_type;
    std::optional<std::int64_t> count, status, delay_ms;
    std::optional<bool> reset;
    bool ok = in.string("endpoint", endpoint) && in.boolean("reset", reset) &&
              in.integer("count", count, 1, 1000000) && in.integer("status", status, 100, 599) &&
              in.integer("delay_ms", delay_ms, 0, 600000) && in.string("body", body) &&
              in.string("error", error) && in.string("description", description) &&
              in.string("content_type", content_type);
    if (ok) {
      if (const auto* v = in.find("retry_after")) {
        if (v->IsString()) {
          retry_after = std::string(v->GetString(), v->GetStringLength());
        } else if (v->IsInt64()) {
          retry_after = std::to_string(v->GetInt64());
        } else {
          ok = in.fail("retry_after", "a string (the header value)");
        }
      }
    }
    if (ok) {
      if (const auto* v = in.find("error_codes")) {
        if (!v->IsArray()) ok = in.fail("error_codes", "an array of integers");
        for (rapidjson::SizeType i = 0; ok && i < v->Size(); ++i) {
          if (!(*v)[i].IsInt64()) {
            ok = in.fail("error_codes", "an array of integers");
          } else {
            failure.error_codes.push_back((*v)[i].GetInt64());
          }
        }
      }
    }
    if (ok) {
      const bool known = endpoint && (*endpoint == "devicecode" || *endpoint == "token" ||
                                      *endpoint == "refresh" || *endpoint == "graph" ||
                                      (endpoint->size() > 1 && (*endpoint)[0] == '/'));
      if (!known) ok = in.fail("endpoint", "devicecode, token, refresh, graph or a Graph path");
    }
    if (!ok) {
      send_json(res, 400, error_json(in.message));
      return;
    }
    failure.endpoint = *endpoint;
    failure.count = static_cast<int>(count.value_or(1));
    if (status) failure.status = static_cast<int>(*status);
    failure.retry_after = retry_after;
    failure.delay_ms = static_cast<int>(delay_ms.value_or(0));
    failure.body = body;
    failure.error = error;
    failure.description = description;
    failure.content_type = content_type;
    failure.reset = reset.value_or(false);
    failures_.push_back(std::move(failure));
    send_json(res, 200,
              Json()
                  .begin_object()
                  .field_num("queued", static_cast<std::int64_t>(failures_.size()))
                  .end_object()
                  .text());
  } else if (path == "/_sim/fail/clear") {
    failures_.clear();
    send_json(res, 200, ok_json());
  } else {
    send_json(res, 404, error_json("unknown control path " + path));
  }
}

std::string Simulator::config_json_locked() const {
  Json json;
  json.begin_object()
      .field_num("interval", config_.interval)
      .field_num("expires_in", config_.expires_in)
      .field_num("token_lifetime", config_.token_lifetime)
      .field_bool("omit_interval", config_.omit_interval)
      .field_bool("string_numbers", config_.string_numbers)
      .field_bool("errors_on_200", config_.errors_on_200)
      .field_bool("strict_rotation", config_.strict_rotation)
      .field_bool("omit_id_token", config_.omit_id_token);
  json.key("auto_approve_after");
  if (config_.auto_approve_after) {
    json.real(*config_.auto_approve_after);
  } else {
    json.null();
  }
  json.key("presence")
      .begin_object()
      .field("availability", config_.presence.availability)
      .field("activity", config_.presence.activity)
      .end_object();
  json.key("user_presence").begin_object();
  for (const auto& [username, presence] : config_.user_presence) {
    json.key(username)
        .begin_object()
        .field("availability", presence.availability)
        .field("activity", presence.activity)
        .end_object();
  }
  json.end_object();
  json.field("verification_uri", config_.verification_uri)
      .field_num("page_size", config_.page_size)
      .field_num("events", config_.events)
      .field_num("authorization_code_lifetime", config_.authorization_code_lifetime)
      .field_bool("decline_browser_sign_in", config_.decline_browser_sign_in);
  json.key("redirect_uris").begin_array();
  for (const auto& uri : config_.redirect_uris) json.str(uri);
  json.end_array();
  return json.end_object().text();
}

std::string Simulator::counters_json_locked() const {
  Json json;
  json.begin_object().key("requests").begin_object();
  json.field_num("devicecode", counters_.devicecode)
      .field_num("token", counters_.token)
      .field_num("refresh", counters_.refresh)
      .field_num("graph", counters_.graph);
  json.key("graph_paths").begin_object();
  for (const auto& [path, n] : counters_.graph_paths) json.field_num(path, n);
  json.end_object();
  json.field_num("openid_configuration", counters_.openid_configuration)
      .field_num("authorize", counters_.authorize)
      .end_object();
  json.key("polls").begin_object();
  for (const auto& [code, n] : counters_.polls) json.field_num(code, n);
  json.end_object();
  json.field_num("interval_violations", counters_.interval_violations)
      .field_num("slow_down_sent", counters_.slow_down_sent)
      .field_num("rotated_token_reuse", counters_.rotated_token_reuse)
      .field_num("tcp_connections", static_cast<std::int64_t>(counters_.connections.size()))
      .field_num("tls_handshakes", counters_.tls_handshakes)
      .field_num("unauthorized_graph", counters_.unauthorized_graph)
      .field_num("authorization_codes_issued", counters_.authorization_codes_issued)
      .field_num("authorization_code_redemptions", counters_.authorization_code_redemptions)
      .field_num("code_reuse", counters_.code_reuse)
      .field_num("pkce_failures", counters_.pkce_failures)
      .field_num("redirect_uri_mismatches", counters_.redirect_uri_mismatches)
      .field_num("authorize_without_pkce", counters_.authorize_without_pkce)
      .field_num("policy_refusals", counters_.policy_refusals);
  return json.end_object().text();
}

std::string Simulator::codes_json_locked(Clock::time_point now) {
  Json json;
  json.begin_object().key("codes").begin_array();
  for (const auto& device_code : code_order_) {
    auto& code = codes_.at(device_code);
    update_code_locked(code, now);
    const auto lifetime =
        std::chrono::duration_cast<std::chrono::milliseconds>(code.expires_at - code.issued);
    json.begin_object()
        .field("user_code", code.user_code)
        .field("state", state_name(code, now))
        .field("client_id", code.client_id)
        .field("scope", code.scope)
        .field("tenant", code.tenant)
        .field_bool("v1", code.v1)
        .field_num("issued_at_ms", code.issued_at_ms)
        .field_num("expires_at_ms", code.issued_at_ms + lifetime.count());
    json.key("approved_at_ms");
    if (code.approved_at_ms) {
      json.num(*code.approved_at_ms);
    } else {
      json.null();
    }
    json.field_num("polls", code.polls).field_num("interval", code.interval);
    json.key("poll_lateness_ms").begin_array();
    for (const double ms : code.poll_lateness_ms) json.real(std::round(ms * 10) / 10);
    json.end_array().end_object();
  }
  return json.end_array().end_object().text();
}

}  // namespace g2m::sim

namespace g2m::sim {

// Every secret handed out so far, so a test can prove none of them leaked into MQTT or logs.
std::string Simulator::issued_json_locked() const {
  Json json;
  json.begin_object().key("device_codes").begin_array();
  for (const auto& device_code : code_order_) json.str(device_code);
  json.end_array().key("access_tokens").begin_array();
  for (const auto& [token, unused] : access_tokens_) json.str(token);
  json.end_array().key("refresh_tokens").begin_array();
  for (const auto& [token, unused] : refresh_tokens_) json.str(token);
  json.end_array().key("id_tokens").begin_array();
  for (const auto& token : issued_id_tokens_) json.str(token);
  json.end_array().key("authorization_codes").begin_array();
  for (const auto& code : authorization_code_order_) json.str(code);
  return json.end_array().end_object().text();
}

}  // namespace g2m::sim
