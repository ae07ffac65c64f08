// Microsoft identity platform endpoints: device authorization (v2 and legacy v1), token
// (device_code and refresh_token grants; authorization_code is in browser.cpp), OpenID discovery,
// and the device-login page.
#include <algorithm>

#include "simulator.h"
#include "util.h"

namespace g2m::sim {
namespace {

constexpr const char* kDeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

// Loopback scheduling jitter: a poll this much early is not yet an RFC 8628 §3.5 violation.
constexpr auto kIntervalGrace = std::chrono::milliseconds(25);

struct OauthError {
  int status = 400;
  std::string error;
  std::int64_t code = 0;
  std::string text;
};

OauthError missing_parameter(const std::string& name) {
  return {400, "invalid_request", 900144,
          "The request body must contain the following parameter: '" + name + "'."};
}

OauthError bad_tenant(const std::string& tenant) {
  return {400, "invalid_request", 900023,
          "Specified tenant identifier '" + tenant.substr(0, 100) +
              "' is neither a valid DNS name, nor a valid external domain."};
}

bool has_scope(const std::vector<std::string>& scopes, const std::string& wanted) {
  return std::any_of(scopes.begin(), scopes.end(),
                     [&](const std::string& s) { return to_lower(s) == wanted; });
}

std::string user_domain(const std::string& username) {
  const auto at = username.find('@');
  return to_lower(at == std::string::npos ? username : username.substr(at + 1));
}

std::string tenant_id(const std::string& tenant, const User& user) {
  // On common/organizations the id_token names the user's home tenant.
  if (is_guid(tenant)) return to_lower(tenant);
  const auto lower = to_lower(tenant);
  const bool alias = lower == "common" || lower == "organizations" || lower == "consumers";
  return name_guid("tenant:" + (alias ? user_domain(user.username) : lower));
}

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title><style>body{font-family:sans-serif;max-width:32em;margin:3em auto}"
         "input{font-size:1.2em;margin:.2em 0}</style></head><body><h1>" +
         html_escape(title) + "</h1>" + body + "</body></html>\n";
}

}  // namespace

std::string user_oid(const User& user) {
  return name_guid("user:" + to_lower(user.username));
}

void Simulator::handle_devicecode(const Request& req, Response& res, bool v1, bool /*https*/) {
  std::optional<Failure> failure;
  int error_status = 400;
  {
    std::lock_guard lock(mutex_);
    ++counters_.devicecode;
    failure = take_failure_locked(Endpoint::devicecode, req.path);
    // Microsoft's /devicecode returns its errors with HTTP 200 (MSAL.NET relies on it).
    error_status = config_.errors_on_200 ? 200 : 400;
  }
  if (failure && apply_failure(*failure, req, res, false)) return;

  const auto form = form_of(req);
  const auto tenant = req.matches[1].str();
  const auto client_id = form_value(form, "client_id");
  const auto resource = form_value(form, "resource");
  std::optional<OauthError> error;
  if (!valid_tenant(tenant)) {
    error = bad_tenant(tenant);
  } else if (client_id.empty()) {
    error = missing_parameter("client_id");
  } else if (v1 && resource.empty()) {
    error = missing_parameter("resource");
  }
  if (!error) {
    std::lock_guard lock(mutex_);
    const auto* policy = policy_locked(tenant);
    if (policy != nullptr && policy->device_code == "refuse_at_request") {
      ++counters_.policy_refusals;
      error = OauthError{error_status, policy->error, policy->device_code_error_code,
                         policy->description.value_or(policy_text(policy->device_code_error_code))};
    }
  }
  if (error) {
    send_oauth_error(req, res, error_status, error->error, error->code, error->text);
    return;
  }

  Json json;
  {
    std::lock_guard lock(mutex_);
    DeviceCode code;
    do {
      code.user_code = random_user_code();
    } while (user_codes_.count(code.user_code) != 0);
    // RFC 8628 §5.2: the device code is never shown, so it can be long and high-entropy.
    code.device_code = random_token(96);
    code.client_id = client_id;
    code.scope = form_value(form, "scope");
    code.tenant = tenant;
    code.resource = resource;
    code.v1 = v1;
    code.issued = Clock::now();
    code.expires_at = code.issued + std::chrono::seconds(config_.expires_in);
    code.issued_at_ms = now_ms();
    code.auto_approve_after = config_.auto_approve_after;
    code.interval = config_.interval;

    const bool strings = v1 || config_.string_numbers;
    const auto message = "To sign in, use a web browser to open the page " +
                         config_.verification_uri + " and enter the code " + code.user_code +
                         " to authenticate.";
    json.begin_object()
        .field("user_code", code.user_code)
        .field("device_code", code.device_code)
        .field(v1 ? "verification_url" : "verification_uri", config_.verification_uri)
        .field_int("expires_in", config_.expires_in, strings);
    if (!config_.omit_interval) json.field_int("interval", config_.interval, strings);
    json.field("message", message).end_object();

    // RFC 8628 §3.5: the first poll is due one interval after this answer.
    code.poll_reference = Clock::now();
    user_codes_[code.user_code] = code.device_code;
    code_order_.push_back(code.device_code);
    codes_.emplace(code.device_code, std::move(code));
  }
  send_json(res, 200, json.text());
}

void Simulator::handle_token(const Request& req, Response& res, bool v1, bool https) {
  const auto arrival = Clock::now();
  const auto form = form_of(req);
  auto grant_type = form_value(form, "grant_type");
  // Entra also accepts the short alias `device_code` (msal-node sends it).
  if (grant_type == "device_code") grant_type = kDeviceCodeGrant;
  const bool refresh = grant_type == "refresh_token";
  std::optional<Failure> failure;
  {
    std::lock_guard lock(mutex_);
    ++(refresh ? counters_.refresh : counters_.token);
    failure = take_failure_locked(refresh ? Endpoint::refresh : Endpoint::token, req.path);
    if (failure && failure->answers() && grant_type == kDeviceCodeGrant) {
      // A poll answered with an injected failure is still a poll: a client that retries it
      // sooner than the interval is counted as a violation (no slow_down is sent).
      auto device_code = form_value(form, "device_code");
      if (v1 && device_code.empty()) device_code = form_value(form, "code");
      const auto it = codes_.find(device_code);
      if (it != codes_.end() && it->second.client_id == form_value(form, "client_id")) {
        note_poll_locked(it->second, arrival);
      }
    }
  }
  if (failure && apply_failure(*failure, req, res, false)) return;

  const auto tenant = req.matches[1].str();
  std::optional<OauthError> error;
  if (!valid_tenant(tenant)) {
    error = bad_tenant(tenant);
  } else if (grant_type.empty()) {
    error = missing_parameter("grant_type");
  } else if (form_value(form, "client_id").empty()) {
    error = missing_parameter("client_id");
  } else if (grant_type != kDeviceCodeGrant && !refresh &&
             (grant_type != "authorization_code" || v1)) {
    error = OauthError{
        400, "unsupported_grant_type", 70003,
        "The app requested an unsupported grant type '" + grant_type.substr(0, 100) + "'."};
  }
  if (error) {
    send_oauth_error(req, res, error->status, error->error, error->code, error->text);
  } else if (refresh) {
    redeem_refresh_token(req, res, form, v1, https);
  } else if (grant_type == "authorization_code") {
    redeem_authorization_code(req, res, form, https);
  } else {
    poll_device_code(req, res, form, v1, https, arrival);
  }
}

bool Simulator::note_poll_locked(DeviceCode& code, Clock::time_point now) {
  ++code.polls;
  ++counters_.polls[code.user_code];
  // RFC 8628 §3.5: at least `interval` seconds between polls, the first counted from the answer.
  const auto due = code.poll_reference + std::chrono::seconds(code.interval);
  code.poll_lateness_ms.push_back(std::chrono::duration<double, std::milli>(now - due).count());
  const bool early = now < due - kIntervalGrace;
  code.poll_reference = now;
  if (early) ++counters_.interval_violations;
  return early;
}

void Simulator::update_code_locked(DeviceCode& code, Clock::time_point now) {
  if (code.state != CodeState::pending || !code.auto_approve_after || now >= code.expires_at)
    return;
  const auto due = code.issued + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(*code.auto_approve_after));
  if (now < due) return;
  code.state = CodeState::approved;
  code.approved_at_ms = now_ms();
  code.user = User{};
}

void Simulator::poll_device_code(const Request& req, Response& res,
                                 const std::map<std::string, std::string>& form, bool v1,
                                 bool https, Clock::time_point arrival) {
  // MSAL Python sends both device_code and code; v1 names it code.
  auto device_code = form_value(form, "device_code");
  if (v1 && device_code.empty()) device_code = form_value(form, "code");
  if (device_code.empty()) {
    const auto e = missing_parameter(v1 ? "code" : "device_code");
    send_oauth_error(req, res, e.status, e.error, e.code, e.text);
    return;
  }
  std::optional<OauthError> error;
  std::string body;
  {
    std::lock_guard lock(mutex_);
    const auto it = codes_.find(device_code);
    if (it == codes_.end()) {
      error = OauthError{400, "bad_verification_code", 70018,
                         "Invalid verification code due to User typing in wrong user code for "
                         "device code flow."};
    } else if (it->second.client_id != form_value(form, "client_id")) {
      error = OauthError{400, "invalid_grant", 70000, "Provided grant is invalid or malformed."};
    } else {
      auto& code = it->second;
      const bool early = note_poll_locked(code, arrival);
      update_code_locked(code, arrival);
      if (code.state == CodeState::redeemed || code.state == CodeState::refused ||
          (code.state == CodeState::declined && code.decline_reported)) {
        // A device code is single-use: AADSTS90120 InvalidDeviceFlowRequest.
        error = OauthError{400, "invalid_grant", 90120,
                           "The request was already authorized or declined."};
      } else if (arrival >= code.expires_at) {
        error = OauthError{400, "expired_token", 70019, "Verification code expired."};
      } else if (early) {
        // RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this and all
        // subsequent requests". Entra documents no number for it; slow_down is the RFC's variant
        // of authorization_pending, hence 70016.
        code.interval += 5;
        ++counters_.slow_down_sent;
        error = OauthError{400, "slow_down", 70016,
                           "OAuth 2.0 device flow error. Polling too frequently: wait at least " +
                               std::to_string(code.interval) + " seconds between requests."};
      } else if (code.state == CodeState::declined) {
        code.decline_reported = true;
        error = OauthError{400, "authorization_declined", 65004,
                           "User declined to consent to access the app."};
      } else if (code.state == CodeState::pending) {
        error = OauthError{400, "authorization_pending", 70016,
                           "OAuth 2.0 device flow error. Authorization is pending. Continue "
                           "polling."};
      } else if (const auto* policy = policy_locked(req.matches[1].str());
                 policy != nullptr && policy->device_code != "allow") {
        // The user signed in, but the tenant's policy refuses a token to a device-code flow.
        code.state = CodeState::refused;
        ++counters_.policy_refusals;
        error =
            OauthError{400, policy->error, policy->device_code_error_code,
                       policy->description.value_or(policy_text(policy->device_code_error_code))};
      } else {
        code.state = CodeState::redeemed;
        Grant grant{code.user,     code.client_id, code.scope,     code.tenant,
                    code.resource, code.v1,        next_family_++, "device_code"};
        body = issue_tokens_locked(grant, code.scope, v1, base_url(req, https),
                                   form_value(form, "client_info") == "1");
      }
    }
  }
  if (error) {
    send_oauth_error(req, res, error->status, error->error, error->code, error->text);
  } else {
    send_json(res, 200, body);
  }
}

void Simulator::redeem_refresh_token(const Request& req, Response& res,
                                     const std::map<std::string, std::string>& form, bool v1,
                                     bool https) {
  const auto token = form_value(form, "refresh_token");
  if (token.empty()) {
    const auto e = missing_parameter("refresh_token");
    send_oauth_error(req, res, e.status, e.error, e.code, e.text);
    return;
  }
  const std::string revoked_text =
      "The provided authorization code or refresh token has expired due to inactivity. Send a "
      "new interactive authorization request for this user and resource.";
  std::optional<OauthError> error;
  std::string body;
  {
    std::lock_guard lock(mutex_);
    const auto it = refresh_tokens_.find(token);
    if (it == refresh_tokens_.end()) {
      error = OauthError{400, "invalid_grant", 9002313,
                         "Invalid request. Request is malformed or invalid."};
    } else if (it->second.revoked) {
      error = OauthError{400, "invalid_grant", 70008, revoked_text};
    } else if (it->second.grant.client_id != form_value(form, "client_id")) {
      error = OauthError{400, "invalid_grant", 70000, "Provided grant is invalid or malformed."};
    } else if (const auto* policy = policy_locked(req.matches[1].str());
               policy != nullptr && policy->refuse_device_code_refresh &&
               it->second.grant.origin == "device_code") {
      // Protocol tracking: a session that began with a device code stays one.
      ++counters_.policy_refusals;
      error = OauthError{400, policy->error, policy->refresh_error_code,
                         policy->description.value_or(policy_text(policy->refresh_error_code))};
    } else {
      auto& entry = it->second;
      if (entry.rotated) {
        ++counters_.rotated_token_reuse;
        if (config_.strict_rotation) {
          // Reuse detection (RFC 9700 §4.14.2): revoke the whole family.
          const auto family = entry.grant.family;
          for (auto& [_, other] : refresh_tokens_) {
            if (other.grant.family == family) other.revoked = true;
          }
          error = OauthError{400, "invalid_grant", 70008, revoked_text};
        }
      }
      if (!error) {
        // Entra replaces the refresh token on every use but does not revoke the old one.
        entry.rotated = true;
        Grant grant = entry.grant;
        if (v1 && !form_value(form, "resource").empty())
          grant.resource = form_value(form, "resource");
        auto scope = form_value(form, "scope");
        if (scope.empty()) scope = grant.scope;
        body = issue_tokens_locked(grant, scope, v1, base_url(req, https),
                                   form_value(form, "client_info") == "1");
      }
    }
  }
  if (error) {
    send_oauth_error(req, res, error->status, error->error, error->code, error->text);
  } else {
    send_json(res, 200, body);
  }
}

std::string Simulator::issue_tokens_locked(const Grant& grant, const std::string& scope, bool v1,
                                           const std::string& issuer_base, bool client_info) {
  const auto scopes = split_spaces(scope);
  // Only offline_access earns a refresh token and only openid an id_token; v1 always sends both.
  const bool refresh = v1 || has_scope(scopes, "offline_access") ||
                       has_scope(split_spaces(grant.scope), "offline_access");
  const bool openid = (v1 || has_scope(scopes, "openid")) && !config_.omit_id_token;
  std::string granted;
  for (const auto& s : scopes) {
    if (to_lower(s) == "offline_access") continue;
    if (!granted.empty()) granted += ' ';
    granted += s;
  }
  if (v1 && granted.empty()) granted = "User.Read";

  const auto lifetime = config_.token_lifetime;
  const auto now = now_seconds();
  const auto access_token = random_token(64);
  access_tokens_[access_token] =
      AccessToken{grant.user, Clock::now() + std::chrono::seconds(lifetime)};
  std::string refresh_token;
  if (refresh) {
    refresh_token = random_token(96);
    refresh_tokens_[refresh_token] = RefreshToken{grant, false, false, next_refresh_sequence_++};
  }
  const auto oid = user_oid(grant.user);
  const auto tid = tenant_id(grant.tenant, grant.user);

  std::string id_token;
  if (openid) {
    const auto header = Json()
                            .begin_object()
                            .field("typ", "JWT")
                            .field("alg", "RS256")
                            .field("kid", "g2m-simulator")
                            .end_object()
                            .text();
    Json payload;
    payload.begin_object()
        .field("aud", grant.client_id)
        .field("iss", v1 ? "https://sts.windows.net/" + tid + "/"
                         : issuer_base + "/" + grant.tenant + "/v2.0")
        .field_num("iat", now)
        .field_num("nbf", now)
        .field_num("exp", now + lifetime)
        .field("name", grant.user.name)
        .field("preferred_username", grant.user.username)
        .field("oid", oid)
        .field("sub", base64url(name_guid("sub:" + oid + ":" + grant.client_id)))
        .field("tid", tid)
        .field("uti", random_token(16))
        .field("ver", v1 ? "1.0" : "2.0");
    if (v1) payload.field("unique_name", grant.user.username).field("upn", grant.user.username);
    payload.end_object();
    // Clients must not validate it (it is for the client to read), so the signature is random.
    id_token = base64url(header) + "." + base64url(payload.text()) + "." + random_token(256);
  }

  const bool strings = v1 || config_.string_numbers;
  Json json;
  json.begin_object().field("token_type", "Bearer").field("scope", granted);
  json.field_int("expires_in", lifetime, strings).field_int("ext_expires_in", lifetime, strings);
  if (v1) {
    json.field_int("expires_on", now + lifetime, true)
        .field_int("not_before", now, true)
        .field("resource", grant.resource);
  }
  json.field("access_token", access_token);
  if (refresh) json.field("refresh_token", refresh_token);
  if (openid) {
    json.field("id_token", id_token);
    issued_id_tokens_.push_back(id_token);
  }
  if (client_info) {
    json.field(
        "client_info",
        base64url(Json().begin_object().field("uid", oid).field("utid", tid).end_object().text()));
  }
  return json.end_object().text();
}

void Simulator::handle_openid_configuration(const Request& req, Response& res, bool https) {
  {
    std::lock_guard lock(mutex_);
    ++counters_.openid_configuration;
  }
  const auto tenant = req.matches[1].str();
  if (!valid_tenant(tenant)) {
    const auto e = bad_tenant(tenant);
    send_oauth_error(req, res, e.status, e.error, e.code, e.text);
    return;
  }
  // Endpoints are absolute URLs on the listener this request came in on.
  const auto base = base_url(req, https) + "/" + tenant;
  const auto array = [](Json& json, const char* name, std::initializer_list<const char*> items) {
    json.key(name).begin_array();
    for (const auto* item : items) json.str(item);
    json.end_array();
  };
  Json json;
  json.begin_object()
      .field("token_endpoint", base + "/oauth2/v2.0/token")
      .field("device_authorization_endpoint", base + "/oauth2/v2.0/devicecode")
      .field("authorization_endpoint", base + "/oauth2/v2.0/authorize")
      .field("end_session_endpoint", base + "/oauth2/v2.0/logout")
      .field("jwks_uri", base + "/discovery/v2.0/keys")
      .field("issuer", base + "/v2.0");
  array(json, "token_endpoint_auth_methods_supported",
        {"client_secret_post", "private_key_jwt", "client_secret_basic"});
  array(json, "response_modes_supported", {"query", "fragment", "form_post"});
  array(json, "subject_types_supported", {"pairwise"});
  array(json, "id_token_signing_alg_values_supported", {"RS256"});
  array(json, "response_types_supported", {"code", "id_token", "code id_token", "id_token token"});
  array(json, "scopes_supported", {"openid", "profile", "email", "offline_access"});
  array(json, "claims_supported",
        {"sub", "iss", "aud", "exp", "iat", "nbf", "name", "preferred_username", "oid", "tid",
         "ver"});
  json.field_bool("request_uri_parameter_supported", false)
      .field_null("tenant_region_scope")
      .field("cloud_instance_name", "microsoftonline.com")
      .field("cloud_graph_host_name", "graph.windows.net")
      .field("msgraph_host", "graph.microsoft.com");
  send_json(res, 200, json.end_object().text());
}

DeviceCode* Simulator::find_user_code_locked(const std::string& user_code) {
  const auto it = user_codes_.find(normalize_user_code(user_code));
  if (it == user_codes_.end()) return nullptr;
  const auto code = codes_.find(it->second);
  return code == codes_.end() ? nullptr : &code->second;
}

Decision Simulator::decide_locked(const std::string& user_code, bool approve, const User& user,
                                  Clock::time_point now) {
  auto* code = find_user_code_locked(user_code);
  if (code == nullptr) return Decision::not_found;
  update_code_locked(*code, now);
  if (now >= code->expires_at && code->state != CodeState::redeemed) return Decision::expired;
  if (code->state != CodeState::pending) return Decision::not_pending;
  code->state = approve ? CodeState::approved : CodeState::declined;
  if (approve) {
    code->approved_at_ms = now_ms();
    code->user = user;
  }
  return Decision::done;
}

void Simulator::handle_devicelogin_page(const Request& req, Response& res) {
  const auto user_code = req.get_param_value("user_code");
  const User user;
  const auto body =
      "<p>Enter the code shown on your device.</p>"
      "<form method=\"post\" action=\"/devicelogin\">"
      "<label>Code<br><input name=\"user_code\" autocomplete=\"off\" autofocus value=\"" +
      html_escape(user_code) +
      "\"></label><br>"
      "<label>Name<br><input name=\"name\" value=\"" +
      html_escape(user.name) +
      "\"></label><br>"
      "<label>Username<br><input name=\"username\" value=\"" +
      html_escape(user.username) +
      "\"></label><br>"
      "<button name=\"action\" value=\"approve\">Approve</button> "
      "<button name=\"action\" value=\"decline\">Decline</button></form>";
  res.status = 200;
  res.set_content(page("Enter code", body), "text/html; charset=utf-8");
}

void Simulator::handle_devicelogin_submit(const Request& req, Response& res) {
  const auto form = form_of(req);
  const auto action = form_value(form, "action");
  User user;
  if (!form_value(form, "name").empty()) user.name = form_value(form, "name");
  if (!form_value(form, "username").empty()) user.username = form_value(form, "username");
  const auto again = std::string("<p><a href=\"/devicelogin\">Enter another code</a></p>");
  if (action != "approve" && action != "decline") {
    res.status = 400;
    res.set_content(page("Unknown action", again), "text/html; charset=utf-8");
    return;
  }
  Decision decision;
  {
    std::lock_guard lock(mutex_);
    decision =
        decide_locked(form_value(form, "user_code"), action == "approve", user, Clock::now());
  }
  switch (decision) {
    case Decision::done:
      res.status = 200;
      res.set_content(
          action == "approve"
              ? page("You're signed in",
                     "<p>You have signed in to the application on your device as " +
                         html_escape(user.username) + ". You may now close this window.</p>" +
                         again)
              : page("Sign-in declined", "<p>The device was not signed in.</p>" + again),
          "text/html; charset=utf-8");
      return;
    case Decision::not_found:
      res.status = 404;
      res.set_content(page("Code not recognised",
                           "<p>That code was not recognised. Check it and try again.</p>" + again),
                      "text/html; charset=utf-8");
      return;
    case Decision::expired:
      res.status = 400;
      res.set_content(page("Code expired", "<p>That code has expired.</p>" + again),
                      "text/html; charset=utf-8");
      return;
    case Decision::not_pending:
      res.status = 409;
      res.set_content(page("Code already used", "<p>That code was already used.</p>" + again),
                      "text/html; charset=utf-8");
      return;
  }
}

}  // namespace g2m::sim
