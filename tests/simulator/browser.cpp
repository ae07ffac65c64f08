// The browser sign-in of the Microsoft identity platform: GET /{tenant}/oauth2/v2.0/authorize (the
// simulated user signs in at once and the answer is the 302 to the redirect URI), the
// authorization_code grant with PKCE at /token, and the tenant policies that refuse the device
// code (security defaults, Conditional Access "authentication flows").
#include <algorithm>
#include <cctype>

#include "simulator.h"
#include "util.h"

namespace g2m::sim {
namespace {

constexpr const char* kNativeClient =
    "https://login.microsoftonline.com/common/oauth2/nativeclient";
constexpr const char* kExpiredText =
    "The provided authorization code or refresh token has expired due to inactivity. Send a new "
    "interactive authorization request for this user and resource.";

using Params = std::vector<std::pair<std::string, std::string>>;

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title><style>body{font-family:sans-serif;max-width:40em;margin:3em auto}"
         "code{word-break:break-all}</style></head><body><h1>" +
         html_escape(title) + "</h1>" + body + "</body></html>\n";
}

// http://localhost[:port][/path] (also 127.0.0.1 and [::1]): Entra accepts a loopback redirect
// URI on any port for native apps (RFC 8252 §7.3).
bool loopback_redirect(const std::string& uri) {
  const auto lower = to_lower(uri);
  for (const std::string host : {"localhost", "127.0.0.1", "[::1]"}) {
    const auto prefix = "http://" + host;
    if (lower.rfind(prefix, 0) != 0) continue;
    auto rest = std::string_view(uri).substr(prefix.size());
    if (!rest.empty() && rest.front() == ':') {
      std::size_t digits = 1;
      while (digits < rest.size() && digits <= 6 &&
             std::isdigit(static_cast<unsigned char>(rest[digits]))) {
        ++digits;
      }
      if (digits == 1 || digits > 6) return false;
      const auto port = std::stoi(std::string(rest.substr(1, digits - 1)));
      if (port < 1 || port > 65535) return false;
      rest = rest.substr(digits);
    }
    return (rest.empty() || rest.front() == '/' || rest.front() == '?') &&
           rest.find('#') == std::string_view::npos;
  }
  return false;
}

bool unreserved(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
           c == '~';
  });
}

std::string with_params(const std::string& uri, const Params& params, bool fragment) {
  std::string out = uri;
  char separator = fragment ? '#' : (uri.find('?') == std::string::npos ? '?' : '&');
  for (const auto& [name, value] : params) {
    out += separator;
    out += name + "=" + url_encode(value);
    separator = '&';
  }
  return out;
}

std::string form_post_page(const std::string& uri, const Params& params) {
  std::string inputs;
  for (const auto& [name, value] : params) {
    inputs += "<input type=\"hidden\" name=\"" + html_escape(name) + "\" value=\"" +
              html_escape(value) + "\">";
  }
  return "<!DOCTYPE html>\n<html><head><title>Working...</title></head>"
         "<body onload=\"document.forms[0].submit()\"><form method=\"POST\" action=\"" +
         html_escape(uri) + "\">" + inputs +
         "<noscript><button>Continue</button></noscript></form></body></html>\n";
}

}  // namespace

std::string policy_text(std::int64_t code) {
  switch (code) {
    case 530035:
      return "Access has been blocked by security defaults. This is due to the request using "
             "legacy auth or being deemed unsafe by security defaults policies.";
    case 53003:
      return "Access has been blocked by Conditional Access policies. The access policy does not "
             "allow token issuance.";
    case 530036:
      // Not in Microsoft's published table; the wording follows the contract (§6).
      return "The refresh token was issued to a device code flow session, which the tenant's "
             "security policy now blocks. The refresh token should be deleted; sign in again with "
             "an allowed authentication flow.";
    case 53000:
      return "Device is not in required device state: compliant. Conditional Access policy "
             "requires a compliant device, and the device is not compliant. The user must enroll "
             "their device with an approved MDM provider like Intune.";
    case 50097:
      return "Device authentication is required.";
    case 50005:
      return "User tried to log in to a device from a platform (Unknown) that's currently not "
             "supported through Conditional Access policy. Supported device platforms are: iOS, "
             "Android, Mac, and Windows flavors.";
    default:
      return "Access has been blocked by the tenant's policy.";
  }
}

const TenantPolicy* Simulator::policy_locked(const std::string& tenant) const {
  auto it = policies_.find(to_lower(tenant));
  if (it == policies_.end()) it = policies_.find("*");
  return it == policies_.end() ? nullptr : &it->second;
}

AuthorizeOutcome Simulator::authorize_locked(const std::string& tenant,
                                             const std::map<std::string, std::string>& params,
                                             const std::string& own_base,
                                             std::optional<bool> approve,
                                             std::optional<User> user) {
  ++counters_.authorize;
  const auto param = [&](const char* name) { return form_value(params, name); };
  AuthorizeOutcome out;

  // Errors before the redirect URI is known good are shown on Microsoft's error page: a request
  // is never redirected to an address the application did not register.
  const auto error_page = [&](std::int64_t code, const std::string& error,
                              const std::string& text) {
    const auto aadsts = aadsts_text(nullptr, code, text);
    out.status = 400;
    out.error = error;
    out.error_code = code;
    out.description = aadsts.description;
    out.html = page("Sign in", "<p>Sorry, but we're having trouble signing you in.</p><p><code>" +
                                   html_escape("AADSTS" + std::to_string(code) + ": " + text) +
                                   "</code></p><p>Request Id: " + aadsts.trace_id +
                                   "<br>Correlation Id: " + aadsts.correlation_id +
                                   "<br>Timestamp: " + aadsts.timestamp + "</p>");
    return out;
  };
  if (!valid_tenant(tenant)) {
    return error_page(900023, "invalid_request",
                      "Specified tenant identifier '" + tenant.substr(0, 100) +
                          "' is neither a valid DNS name, nor a valid external domain.");
  }
  const auto client_id = param("client_id");
  if (client_id.empty()) {
    return error_page(900144, "invalid_request",
                      "The request body must contain the following parameter: 'client_id'.");
  }
  const auto redirect_uri = param("redirect_uri");
  if (redirect_uri.empty()) {
    return error_page(900971, "invalid_request", "No reply address provided.");
  }
  const bool registered = redirect_uri == kNativeClient ||
                          redirect_uri == own_base + "/common/oauth2/nativeclient" ||
                          loopback_redirect(redirect_uri) ||
                          std::find(config_.redirect_uris.begin(), config_.redirect_uris.end(),
                                    redirect_uri) != config_.redirect_uris.end();
  if (!registered) {
    ++counters_.redirect_uri_mismatches;
    return error_page(
        50011, "invalid_request",
        "The redirect URI '" + redirect_uri.substr(0, 300) +
            "' specified in the request does not match the redirect URIs configured for the "
            "application '" +
            client_id.substr(0, 100) +
            "'. Make sure the redirect URI sent in the request matches one added to your "
            "application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError "
            "to learn more about how to fix this.");
  }

  // From here on, answers go back to the redirect URI.
  const auto response_mode = param("response_mode");
  const bool fragment = response_mode == "fragment";
  const bool form_post = response_mode == "form_post";
  const auto state = params.find("state");
  // Entra's order: code or error fields, state, then session_state.
  const auto respond = [&](Params fields, const Params& trailing = {}) {
    if (state != params.end()) fields.emplace_back("state", state->second);
    fields.insert(fields.end(), trailing.begin(), trailing.end());
    out.location = with_params(redirect_uri, fields, fragment);
    if (form_post) {
      out.status = 200;
      out.location = with_params(redirect_uri, fields, false);
      out.html = form_post_page(redirect_uri, fields);
    } else {
      out.status = 302;
    }
    return out;
  };
  const auto redirect_error = [&](const std::string& error, std::int64_t code,
                                  const std::string& text, Params extra = {}) {
    const auto aadsts = aadsts_text(nullptr, code, text);
    out.error = error;
    out.error_code = code;
    out.description = aadsts.description;
    Params fields{{"error", error}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    fields.emplace_back("error_description", aadsts.description);
    fields.emplace_back("error_uri",
                        "https://login.microsoftonline.com/error?code=" + std::to_string(code));
    return respond(std::move(fields));
  };

  if (!response_mode.empty() && response_mode != "query" && !fragment && !form_post) {
    return redirect_error("invalid_request", 70007,
                          "The app returned an unsupported value of response_mode: '" +
                              response_mode.substr(0, 100) + "'.");
  }
  const auto response_type = param("response_type");
  if (response_type.empty()) {
    return redirect_error(
        "invalid_request", 900144,
        "The request body must contain the following parameter: 'response_type'.");
  }
  if (response_type != "code") {
    const auto type = response_type.substr(0, 100);
    if (type.find("id_token") != std::string::npos) {
      return redirect_error("unsupported_response_type", 700054,
                            "response_type 'id_token' is not enabled for the application.");
    }
    if (type.find("token") != std::string::npos) {
      return redirect_error("unsupported_response_type", 700051,
                            "response_type 'token' is not enabled for the application.");
    }
    return redirect_error("unsupported_response_type", 70005,
                          "The provided value '" + type +
                              "' for the input parameter 'response_type' is not supported.");
  }
  if (param("scope").empty()) {
    return redirect_error("invalid_request", 900144,
                          "The request body must contain the following parameter: 'scope'.");
  }
  const auto challenge = param("code_challenge");
  auto method = param("code_challenge_method");
  if (!method.empty() && challenge.empty()) {
    return redirect_error(
        "invalid_request", 900144,
        "The request body must contain the following parameter: 'code_challenge'.");
  }
  if (!challenge.empty()) {
    // "If excluded, code_challenge is assumed to be plaintext" (Entra supports plain and S256).
    if (method.empty()) method = "plain";
    if (method != "S256" && method != "plain") {
      return redirect_error("invalid_request", 90100,
                            "The provided value for the input parameter 'code_challenge_method' "
                            "is not valid. Expected 'S256' or 'plain'.");
    }
    // S256: base64url of 32 bytes is 43 characters; plain: a verifier of 43 to 128 characters.
    const bool size_ok = method == "S256" ? challenge.size() == 43
                                          : challenge.size() >= 43 && challenge.size() <= 128;
    if (!size_ok || !unreserved(challenge)) {
      return redirect_error("invalid_request", 501491, "Invalid size of Code_Challenge parameter.");
    }
  } else {
    // Entra only recommends PKCE for public clients (it requires it for SPAs).
    ++counters_.authorize_without_pkce;
  }

  if (!approve.value_or(!config_.decline_browser_sign_in)) {
    return redirect_error("access_denied", 65004, "User declined to consent to access the app.",
                          {{"error_subcode", "cancel"}});
  }

  AuthorizationCode code;
  do {
    code.code = random_token(96);
  } while (authorization_codes_.count(code.code) != 0);
  code.client_id = client_id;
  code.redirect_uri = redirect_uri;
  code.scope = param("scope");
  code.tenant = tenant;
  code.code_challenge = challenge;
  code.code_challenge_method = challenge.empty() ? std::string{} : method;
  code.expires_at = Clock::now() + std::chrono::seconds(config_.authorization_code_lifetime);
  code.issued_at_ms = now_ms();
  code.expires_at_ms = code.issued_at_ms + config_.authorization_code_lifetime * 1000LL;
  if (user) {
    code.user = *user;
  } else if (!param("login_hint").empty()) {
    code.user.username = param("login_hint");
  }
  ++counters_.authorization_codes_issued;
  const auto key = code.code;
  authorization_code_order_.push_back(key);
  authorization_codes_.emplace(key, std::move(code));
  return respond({{"code", key}}, {{"session_state", random_guid()}});
}

void Simulator::handle_authorize(const Request& req, Response& res, bool https) {
  const auto query_at = req.target.find('?');
  const auto params = query_at == std::string::npos
                          ? std::map<std::string, std::string>{}
                          : parse_form(std::string_view(req.target).substr(query_at + 1));
  AuthorizeOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    outcome = authorize_locked(req.matches[1].str(), params, base_url(req, https), std::nullopt,
                               std::nullopt);
  }
  res.set_header("Cache-Control", "no-store, no-cache");
  res.set_header("Pragma", "no-cache");
  if (outcome.status == 302) {
    res.status = 302;
    res.set_header("Location", outcome.location);
    res.set_content(
        "<html><head><title>Object moved</title></head><body><h2>Object moved to <a "
        "href=\"" +
            html_escape(outcome.location) + "\">here</a>.</h2></body></html>\n",
        "text/html; charset=utf-8");
  } else {
    res.status = outcome.status;
    res.set_content(outcome.html, "text/html; charset=utf-8");
  }
}

void Simulator::redeem_authorization_code(const Request& req, Response& res,
                                          const std::map<std::string, std::string>& form,
                                          bool https) {
  struct Error {
    std::string error;
    std::int64_t code = 0;
    std::string text;
  };
  std::optional<Error> error;
  const auto value = [&](const char* name) { return form_value(form, name); };
  for (const char* required : {"code", "redirect_uri"}) {
    if (value(required).empty()) {
      error = Error{"invalid_request", 900144,
                    std::string("The request body must contain the following parameter: '") +
                        required + "'."};
      break;
    }
  }
  std::string body;
  if (!error) {
    std::lock_guard lock(mutex_);
    const auto it = authorization_codes_.find(value("code"));
    const auto now = Clock::now();
    if (it == authorization_codes_.end()) {
      error = Error{"invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."};
    } else {
      auto& code = it->second;
      ++code.redemption_attempts;
      const auto verifier = value("code_verifier");
      code.verifier_seen = verifier;
      if (code.client_id != value("client_id")) {
        error = Error{"invalid_grant", 70000, "Provided grant is invalid or malformed."};
      } else if (to_lower(code.tenant) != to_lower(req.matches[1].str())) {
        error = Error{"invalid_grant", 700005,
                      "Provided Authorization Code is intended to use against other tenant, thus "
                      "rejected."};
      } else if (code.redeemed) {
        ++counters_.code_reuse;
        error = Error{"invalid_grant", 54005,
                      "OAuth2 Authorization code was already redeemed, please retry with a new "
                      "valid code or use an existing refresh token."};
      } else if (now >= code.expires_at) {
        error = Error{"invalid_grant", 70008, kExpiredText};
      } else if (value("redirect_uri") != code.redirect_uri) {
        ++counters_.redirect_uri_mismatches;
        error = Error{"invalid_grant", 50011,
                      "The redirect URI '" + value("redirect_uri").substr(0, 300) +
                          "' specified in the request does not match the redirect URI used to "
                          "request the authorization code."};
      } else if (!code.code_challenge.empty() &&
                 (verifier.empty() ||
                  (code.code_challenge_method == "S256" ? base64url(sha256(verifier)) : verifier) !=
                      code.code_challenge)) {
        ++counters_.pkce_failures;
        error = Error{"invalid_grant", 501481,
                      "The Code_Verifier does not match the code_challenge supplied in the "
                      "authorization request."};
      } else {
        code.redeemed = true;
        ++counters_.authorization_code_redemptions;
        Grant grant{code.user, code.client_id, code.scope,     code.tenant,
                    "",        false,          next_family_++, "authorization_code"};
        auto scope = value("scope");
        if (scope.empty()) scope = code.scope;
        body = issue_tokens_locked(grant, scope, false, base_url(req, https),
                                   value("client_info") == "1");
      }
    }
  }
  if (error) {
    send_oauth_error(req, res, 400, error->error, error->code, error->text);
  } else {
    send_json(res, 200, body);
  }
}

std::string Simulator::policies_json_locked() const {
  Json json;
  json.begin_object().key("policies").begin_object();
  for (const auto& [tenant, policy] : policies_) {
    json.key(tenant)
        .begin_object()
        .field("device_code", policy.device_code)
        .field_num("device_code_error_code", policy.device_code_error_code)
        .field("refresh", policy.refuse_device_code_refresh ? "refuse" : "allow")
        .field_num("refresh_error_code", policy.refresh_error_code)
        .field("error", policy.error);
    json.key("description");
    if (policy.description) {
      json.str(*policy.description);
    } else {
      json.null();
    }
    json.end_object();
  }
  return json.end_object().end_object().text();
}

std::string Simulator::authorization_codes_json_locked(Clock::time_point now) const {
  Json json;
  json.begin_object().key("authorization_codes").begin_array();
  for (const auto& key : authorization_code_order_) {
    const auto& code = authorization_codes_.at(key);
    const char* state = code.redeemed ? "redeemed" : now >= code.expires_at ? "expired" : "issued";
    json.begin_object()
        .field("state", state)
        .field("client_id", code.client_id)
        .field("redirect_uri", code.redirect_uri)
        .field("scope", code.scope)
        .field("tenant", code.tenant)
        .field("code_challenge_method", code.code_challenge_method)
        .field("username", code.user.username)
        .field_num("issued_at_ms", code.issued_at_ms)
        .field_num("expires_at_ms", code.expires_at_ms)
        .field_num("redemption_attempts", code.redemption_attempts)
        .field("verifier_seen", code.verifier_seen)
        .end_object();
  }
  return json.end_array().end_object().text();
}

std::string Simulator::refresh_tokens_json_locked() const {
  std::vector<std::pair<std::uint64_t, const std::pair<const std::string, RefreshToken>*>> order;
  for (const auto& entry : refresh_tokens_) order.emplace_back(entry.second.sequence, &entry);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Json json;
  json.begin_object().key("refresh_tokens").begin_array();
  for (const auto& [sequence, entry] : order) {
    const auto& token = entry->second;
    json.begin_object()
        .field("refresh_token", entry->first)
        .field("origin", token.grant.origin)
        .field_num("family", static_cast<std::int64_t>(token.grant.family))
        .field("client_id", token.grant.client_id)
        .field("tenant", token.grant.tenant)
        .field("username", token.grant.user.username)
        .field_bool("rotated", token.rotated)
        .field_bool("revoked", token.revoked)
        .end_object();
  }
  return json.end_array().end_object().text();
}

}  // namespace g2m::sim
