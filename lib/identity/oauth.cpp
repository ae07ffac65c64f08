#include "identity/oauth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "common/time_format.h"
#include "config/url.h"
#include "http/http_failure.h"
#include "json/json.h"

namespace g2m {

namespace {

std::string first_line(const std::string& text) {
  const auto end = text.find_first_of("\r\n");
  return text.substr(0, end);
}

std::vector<std::string> split_scopes(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string s; in >> s;) out.push_back(s);
  return out;
}

// The answer as a JSON object: JSON, or a form-encoded body (GitHub without Accept: JSON)
// turned into an object of strings.
std::optional<rapidjson::Document> body_object(const HttpResponse& response) {
  if (auto doc = json::parse_object(response.body)) return doc;
  if (response.content_type.find("application/x-www-form-urlencoded") == std::string::npos) {
    return std::nullopt;
  }
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  for (const auto& [name, value] : form_decode(response.body)) {
    doc.AddMember(rapidjson::Value(name.c_str(), alloc), rapidjson::Value(value.c_str(), alloc),
                  alloc);
  }
  return doc;
}

AuthFailure invalid_response(long status, std::string description) {
  AuthFailure f;
  f.kind = AuthFailure::Kind::transient;
  f.error = "invalid_response";
  f.http_status = status;
  f.description = std::move(description);
  return f;
}

// Why `uri` may not be shown to a user as the page to open, or "" when it may: https:// (http://
// only when allowed), a host, no user:password@ part (https://microsoft.com@evil.example/ goes
// to evil.example), nothing but visible ASCII.
std::string bad_verification_uri(const std::string& uri, bool allow_http) {
  for (const char c : uri) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return "contains a space, a control character or non-ASCII";
    }
  }
  const auto url = config_detail::parse_url(uri);
  if (!url) return "is not a URL";
  if (url->scheme != "https" && !(allow_http && url->scheme == "http")) {
    return allow_http ? "is not an https:// or http:// URL" : "is not an https:// URL";
  }
  if (url->userinfo) return "carries a user name";
  return {};
}

bool valid_user_code(const std::string& code) {
  if (code.empty() || code.size() > kMaxUserCodeLength) return false;
  return std::all_of(code.begin(), code.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// An access token goes into an Authorization header: nothing but visible ASCII (RFC 6750
// b64token is narrower still), so a CR or LF can never start a header of its own.
bool valid_header_token(const std::string& token) {
  return std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

bool is_loopback_http(std::string_view authority) {
  const auto url = config_detail::parse_url(authority);
  return url && url->scheme == "http" && config_detail::is_loopback_host(url->host);
}

std::string strip_control_characters(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) continue;
    // C1 controls, U+0080..U+009F, are C2 80..C2 9F in UTF-8.
    if (c == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) {
        ++i;
        continue;
      }
    }
    out.push_back(static_cast<char>(c));
  }
  return out;
}

AuthFailure classify_failure(const HttpResponse& response, SystemTime now) {
  AuthFailure f;
  if (!response.ok()) {
    f.kind = AuthFailure::Kind::transient;
    f.error = transport_error_code(response.error);
    f.description = response.error_message;
    return f;
  }
  f.http_status = response.status;
  f.retry_after = parse_retry_after(response.retry_after, now);
  const auto doc = body_object(response);
  const bool server_busy = response.status == 429 || response.status >= 500;
  if (doc) {
    if (auto error = json::get_string(*doc, "error")) {
      f.error = *error;
      f.description = first_line(json::get_string(*doc, "error_description").value_or(""));
      const auto it = doc->FindMember("error_codes");
      if (it != doc->MemberEnd() && it->value.IsArray()) {
        for (const auto& code : it->value.GetArray()) {
          if (code.IsInt()) f.error_codes.push_back(code.GetInt());
        }
        if (!f.error_codes.empty()) f.aadsts = f.error_codes.front();
      }
      if (auto interval = json::get_lenient_int(*doc, "interval"); interval && *interval > 0) {
        f.interval = Seconds(std::min<long long>(*interval, kMaxPollInterval.count()));
      }
      f.kind = (server_busy || f.error == "temporarily_unavailable") ? AuthFailure::Kind::transient
                                                                     : AuthFailure::Kind::oauth;
      if (f.description.empty()) f.description = f.error;
      recognise_tenant_policy(f);
      return f;
    }
  }
  if (server_busy) {
    f.kind = AuthFailure::Kind::transient;
    f.error = "http_" + std::to_string(response.status);
    f.description = "the identity platform answered HTTP " + std::to_string(response.status);
  } else if (response.status >= 400) {
    f.kind = AuthFailure::Kind::terminal;
    f.error = "http_" + std::to_string(response.status);
    f.description = "the identity platform answered HTTP " + std::to_string(response.status) +
                    " without an OAuth error";
  } else {
    // A 200 whose body is not usable: a proxy page, a truncated answer. Worth another try.
    f.kind = AuthFailure::Kind::transient;
    f.error = "invalid_response";
    f.description = doc ? "the identity platform's answer lacks required fields"
                        : "the identity platform's answer is not JSON";
  }
  return f;
}

AuthOutcome<DeviceCode> parse_device_code_response(const HttpResponse& response, SystemTime now,
                                                   std::string_view authority) {
  if (!response.ok() || response.status != 200) return classify_failure(response, now);
  const auto doc = body_object(response);
  // Microsoft's /devicecode returns errors with HTTP 200 (MSAL.NET: expectErrorsOn200OK).
  if (!doc || doc->HasMember("error")) return classify_failure(response, now);
  DeviceCode code;
  auto device_code = json::get_string(*doc, "device_code");
  auto user_code = json::get_string(*doc, "user_code");
  // v1 and Google say verification_url.
  auto uri = json::get_string(*doc, "verification_uri");
  if (!uri) uri = json::get_string(*doc, "verification_url");
  const auto expires_in = json::get_lenient_int(*doc, "expires_in");
  if (!device_code || device_code->empty() || !user_code || user_code->empty() || !uri ||
      !expires_in || *expires_in <= 0) {
    return invalid_response(
        response.status,
        "the device-code answer lacks device_code, user_code, verification_uri or expires_in");
  }
  // What a display shows a person must not send them somewhere a network attacker can change,
  // nor paint the terminal (docs/mqtt-api.md "Untrusted input").
  if (!valid_user_code(*user_code)) {
    return invalid_response(response.status,
                            "the device-code answer's user_code is not 1-32 printable ASCII "
                            "characters");
  }
  const bool allow_http = is_loopback_http(authority);
  auto complete = json::get_string(*doc, "verification_uri_complete");
  for (const auto& [name, value] :
       {std::pair<const char*, const std::optional<std::string>*>{"verification_uri", &uri},
        {"verification_uri_complete", &complete}}) {
    if (!*value) continue;
    const std::string why = bad_verification_uri(**value, allow_http);
    if (!why.empty()) {
      return invalid_response(response.status,
                              std::string("the device-code answer's ") + name + " " + why);
    }
  }
  code.device_code = Secret(std::move(*device_code));
  code.user_code = std::move(*user_code);
  code.verification_uri = std::move(*uri);
  code.verification_uri_complete = std::move(complete);
  code.expires_in = Seconds(std::min<long long>(*expires_in, kMaxDeviceCodeLifetime.count()));
  if (auto interval = json::get_lenient_int(*doc, "interval"); interval && *interval > 0) {
    code.interval = Seconds(std::min<long long>(*interval, kMaxPollInterval.count()));
  }
  std::string message = strip_control_characters(json::get_string(*doc, "message").value_or(""));
  if (message.empty()) {
    message = "To sign in, use a web browser to open the page " + code.verification_uri +
              " and enter the code " + code.user_code + " to authenticate.";
  }
  code.message = std::move(message);
  return code;
}

AuthOutcome<TokenResponse> parse_token_response(const HttpResponse& response, SystemTime now) {
  if (!response.ok() || response.status != 200) return classify_failure(response, now);
  const auto doc = body_object(response);
  // GitHub and others send authorization_pending with HTTP 200.
  if (!doc || doc->HasMember("error")) return classify_failure(response, now);
  auto access = json::get_string(*doc, "access_token");
  if (!access || access->empty()) {
    return invalid_response(response.status, "the token answer has no access_token");
  }
  if (!valid_header_token(*access)) {
    // Never echoed: the description must not carry any part of the token.
    return invalid_response(response.status,
                            "the token answer's access_token contains a space, a control "
                            "character or non-ASCII");
  }
  TokenResponse t;
  t.access_token = Secret(std::move(*access));
  t.refresh_token = Secret(json::get_string(*doc, "refresh_token").value_or(""));
  t.id_token = Secret(json::get_string(*doc, "id_token").value_or(""));
  if (auto expires_in = json::get_lenient_int(*doc, "expires_in"); expires_in && *expires_in > 0) {
    t.expires_in = Seconds(std::min<long long>(*expires_in, kMaxAccessTokenLifetime.count()));
  }
  t.scopes = split_scopes(json::get_string(*doc, "scope").value_or(""));
  return t;
}

std::optional<User> user_from_id_token(const std::string& id_token) {
  const auto first = id_token.find('.');
  const auto second = id_token.find('.', first == std::string::npos ? first : first + 1);
  if (first == std::string::npos || second == std::string::npos) return std::nullopt;
  std::string payload = id_token.substr(first + 1, second - first - 1);
  // base64url → base64 with padding, then OpenSSL's decoder.
  std::replace(payload.begin(), payload.end(), '-', '+');
  std::replace(payload.begin(), payload.end(), '_', '/');
  while (payload.size() % 4 != 0) payload += '=';
  std::string decoded(payload.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(payload.data()),
                                static_cast<int>(payload.size()));
  if (n < 0) return std::nullopt;
  decoded.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts padding bytes as zero bytes: drop them.
  while (!decoded.empty() && decoded.back() == '\0') decoded.pop_back();
  const auto claims = json::parse_object(decoded);
  if (!claims) return std::nullopt;
  User user;
  user.name = json::get_string(*claims, "name").value_or("");
  user.username = json::get_string(*claims, "preferred_username")
                      .value_or(json::get_string(*claims, "email").value_or(""));
  if (user.name.empty() && user.username.empty()) return std::nullopt;
  return user;
}

std::vector<std::string> requested_scopes(const std::vector<std::string>& configured) {
  std::vector<std::string> out = configured;
  for (const char* s : {"openid", "profile", "offline_access"}) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.emplace_back(s);
  }
  return out;
}

std::string join_scopes(const std::vector<std::string>& scopes) {
  std::string out;
  for (const auto& s : scopes) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

}  // namespace g2m
