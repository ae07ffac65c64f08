#include "identity/token_file_codec.h"

#include <string.h>  // explicit_bzero

#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>

#include "common/time_format.h"
#include "json/json.h"

namespace g2m::token_file {

namespace {

// rapidjson output stream appending to a std::string we can wipe afterwards.
struct StringSink {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  const auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string> string_member(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* v = member(object, name);
  if (v == nullptr || !v->IsString()) return std::nullopt;
  return std::string(v->GetString(), v->GetStringLength());
}

constexpr std::pair<const char*, std::string TokenBinding::*> kBindingFields[] = {
    {"client_id", &TokenBinding::client_id},
    {"tenant", &TokenBinding::tenant},
    {"authority", &TokenBinding::authority},
    {"protocol", &TokenBinding::protocol},
};

}  // namespace

void wipe(std::string& bytes) {
  if (!bytes.empty()) explicit_bzero(bytes.data(), bytes.size());
  bytes.clear();
}

std::string printable(std::string_view s) {
  constexpr size_t limit = 100;
  std::string out;
  for (const char c : s.substr(0, limit)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > limit) out += "...";
  return out;
}

std::string encode(const TokenBinding& binding, const TokenSet& tokens) {
  std::string out;
  // Reserved up front so the buffer is not reallocated, which would leave copies of the tokens
  // in freed memory that wipe() cannot reach. JSON escapes at most 6 bytes per input byte.
  std::size_t reserve =
      1024 + 6 * (tokens.access_token.reveal().size() + tokens.refresh_token.reveal().size());
  for (const auto& [key, field] : kBindingFields) reserve += 6 * (binding.*field).size();
  for (const auto& scope : tokens.scopes) reserve += 6 * scope.size() + 8;
  if (tokens.user) reserve += 6 * (tokens.user->name.size() + tokens.user->username.size());
  out.reserve(reserve);
  StringSink sink{&out};
  rapidjson::PrettyWriter<StringSink> w(sink);
  w.SetIndent(' ', 2);
  auto str = [&w](const std::string& s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("version");
  w.Int(kFormatVersion);
  w.Key("binding");
  w.StartObject();
  for (const auto& [key, field] : kBindingFields) {
    w.Key(key);
    str(binding.*field);
  }
  w.EndObject();
  w.Key("access_token");
  str(tokens.access_token.reveal());
  w.Key("refresh_token");
  str(tokens.refresh_token.reveal());
  w.Key("expires_at");
  str(format_utc(tokens.expires_at));
  w.Key("obtained_at");
  str(format_utc(tokens.obtained_at));
  w.Key("scopes");
  w.StartArray();
  for (const auto& scope : tokens.scopes) str(scope);
  w.EndArray();
  w.Key("user");
  if (tokens.user) {
    w.StartObject();
    w.Key("name");
    str(tokens.user->name);
    w.Key("username");
    str(tokens.user->username);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  out.push_back('\n');
  return out;
}

Decoded decode(char* text, std::size_t size, const TokenBinding& expected) {
  Decoded result;
  auto corrupt = [&result](std::string reason) {
    result.kind = Decoded::Kind::corrupt;
    result.reason = std::move(reason);
    return std::move(result);
  };

  rapidjson::Document doc;
  std::string why;
  // Nested deeper than 256 levels is corrupt too (CONTRACT §6 Untrusted input).
  if (json::parse_insitu(doc, text, size, &why) != json::ParseError::none) {
    return corrupt("it is " + why);
  }
  if (!doc.IsObject()) return corrupt("it is not a JSON object");

  const rapidjson::Value* version = member(doc, "version");
  if (version == nullptr || !version->IsInt() || version->GetInt() != kFormatVersion) {
    return corrupt("version is missing or not 1");
  }
  const rapidjson::Value* stored = member(doc, "binding");
  if (stored == nullptr || !stored->IsObject()) return corrupt("binding is missing");
  TokenBinding file_binding;
  for (const auto& [key, field] : kBindingFields) {
    auto value = string_member(*stored, key);
    if (!value) return corrupt(std::string("binding.") + key + " is missing or not a string");
    file_binding.*field = std::move(*value);
  }

  TokenSet tokens;
  auto access = string_member(doc, "access_token");
  if (!access || access->empty()) return corrupt("access_token is missing or empty");
  tokens.access_token = Secret(std::move(*access));
  // An empty refresh token is legitimate (no offline_access granted); a missing one is not.
  auto refresh = string_member(doc, "refresh_token");
  if (!refresh) return corrupt("refresh_token is missing or not a string");
  tokens.refresh_token = Secret(std::move(*refresh));

  const std::pair<const char*, SystemTime TokenSet::*> times[] = {
      {"expires_at", &TokenSet::expires_at},
      {"obtained_at", &TokenSet::obtained_at},
  };
  for (const auto& [key, field] : times) {
    const auto value = string_member(doc, key);
    const auto time = value ? parse_utc(*value) : std::nullopt;
    if (!time) return corrupt(std::string(key) + " is missing or not an ISO 8601 UTC timestamp");
    tokens.*field = *time;
  }

  const rapidjson::Value* scopes = member(doc, "scopes");
  if (scopes == nullptr || !scopes->IsArray()) return corrupt("scopes is missing or not a list");
  for (const auto& scope : scopes->GetArray()) {
    if (!scope.IsString()) return corrupt("scopes contains something other than a string");
    tokens.scopes.emplace_back(scope.GetString(), scope.GetStringLength());
  }

  const rapidjson::Value* user = member(doc, "user");
  if (user == nullptr) return corrupt("user is missing");
  if (!user->IsNull()) {
    const auto user_name = user->IsObject() ? string_member(*user, "name") : std::nullopt;
    const auto username = user->IsObject() ? string_member(*user, "username") : std::nullopt;
    if (!user_name || !username) return corrupt("user is neither null nor {name, username}");
    tokens.user = User{*user_name, *username};
  }

  for (const auto& [key, field] : kBindingFields) {
    if (file_binding.*field != expected.*field) {
      result.kind = Decoded::Kind::other_binding;
      result.reason = std::string("was issued for another ") + key + " (" +
                      printable(file_binding.*field) + ", the configuration names " +
                      printable(expected.*field) + ")";
      return result;
    }
  }

  result.kind = Decoded::Kind::ok;
  result.tokens = std::move(tokens);
  return result;
}

}  // namespace g2m::token_file
