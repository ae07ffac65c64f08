#include "identity/oauth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "common/time_format.h"
#include "json/json.h"

namespace g2m {

namespace {

// Lifetimes and intervals beyond a year are nonsense from a broken or hostile server; clamping
// keeps time arithmetic far from overflow.
constexpr long long kMaxSeconds = 365LL * 24 * 3600;

std::string first_line(const std::string& text) {
  const auto end = text.find_first_of("\r\n");
  return text.substr(0, end);
}

std::optional<Seconds> parse_retry_after(const std::optional<std::string>& header) {
  if (!header) return std::nullopt;
  long long secs = 0;
  const char* begin = header->data();
  const char* end = begin + header->size();
  const auto [ptr, ec] = std::from_chars(begin, end, secs);
  if (ec == std::errc() && ptr == end) return Seconds(std::clamp(secs, 0LL, kMaxSeconds));
  if (auto when = parse_http_date(*header)) {
    const auto delta =
        std::chrono::duration_cast<Seconds>(*when - std::chrono::system_clock::now());
    return std::max(Seconds(0), delta);
  }
  return std::nullopt;
}

const char* transport_error_name(TransportError e) {
  switch (e) {
    case TransportError::timeout:
      return "timeout";
    case TransportError::tls:
      return "tls_error";
    default:
      return "network_error";
  }
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

}  // namespace

AuthFailure classify_failure(const HttpResponse& response) {
  AuthFailure f;
  if (!response.ok()) {
    f.kind = AuthFailure::Kind::transient;
    f.error = transport_error_name(response.error);
    f.description = response.error_message;
    return f;
  }
  f.http_status = response.status;
  f.retry_after = parse_retry_after(response.retry_after);
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
        f.interval = Seconds(std::min(*interval, kMaxSeconds));
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

AuthOutcome<DeviceCode> parse_device_code_response(const HttpResponse& response) {
  if (!response.ok() || response.status != 200) return classify_failure(response);
  const auto doc = body_object(response);
  // Microsoft's /devicecode returns errors with HTTP 200 (MSAL.NET: expectErrorsOn200OK).
  if (!doc || doc->HasMember("error")) return classify_failure(response);
  DeviceCode code;
  auto device_code = json::get_string(*doc, "device_code");
  auto user_code = json::get_string(*doc, "user_code");
  // v1 and Google say verification_url.
  auto uri = json::get_string(*doc, "verification_uri");
  if (!uri) uri = json::get_string(*doc, "verification_url");
  const auto expires_in = json::get_lenient_int(*doc, "expires_in");
  if (!device_code || device_code->empty() || !user_code || user_code->empty() || !uri ||
      !expires_in || *expires_in <= 0) {
    AuthFailure f;
    f.kind = AuthFailure::Kind::transient;
    f.error = "invalid_response";
    f.http_status = response.status;
    f.description =
        "the device-code answer lacks device_code, user_code, verification_uri or expires_in";
    return f;
  }
  code.device_code = Secret(std::move(*device_code));
  code.user_code = std::move(*user_code);
  code.verification_uri = std::move(*uri);
  code.verification_uri_complete = json::get_string(*doc, "verification_uri_complete");
  code.expires_in = Seconds(std::min(*expires_in, kMaxSeconds));
  if (auto interval = json::get_lenient_int(*doc, "interval"); interval && *interval > 0) {
    code.interval = Seconds(std::min(*interval, kMaxSeconds));
  }
  code.message =
      json::get_string(*doc, "message")
          .value_or("To sign in, use a web browser to open the page " + code.verification_uri +
                    " and enter the code " + code.user_code + " to authenticate.");
  return code;
}

AuthOutcome<TokenResponse> parse_token_response(const HttpResponse& response) {
  if (!response.ok() || response.status != 200) return classify_failure(response);
  const auto doc = body_object(response);
  // GitHub and others send authorization_pending with HTTP 200.
  if (!doc || doc->HasMember("error")) return classify_failure(response);
  auto access = json::get_string(*doc, "access_token");
  if (!access || access->empty()) {
    AuthFailure f;
    f.kind = AuthFailure::Kind::transient;
    f.error = "invalid_response";
    f.http_status = response.status;
    f.description = "the token answer has no access_token";
    return f;
  }
  TokenResponse t;
  t.access_token = Secret(std::move(*access));
  t.refresh_token = Secret(json::get_string(*doc, "refresh_token").value_or(""));
  t.id_token = Secret(json::get_string(*doc, "id_token").value_or(""));
  if (auto expires_in = json::get_lenient_int(*doc, "expires_in"); expires_in && *expires_in > 0) {
    t.expires_in = Seconds(std::min(*expires_in, kMaxSeconds));
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
