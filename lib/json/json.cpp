#include "json/json.h"

#include <charconv>

namespace g2m::json {

std::optional<rapidjson::Document> parse(std::string_view text) {
  rapidjson::Document doc;
  // Invalid UTF-8 is not JSON; trailing garbage after the value is a parse error by default.
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) return std::nullopt;
  return doc;
}

std::optional<rapidjson::Document> parse_object(std::string_view text) {
  auto doc = parse(text);
  if (!doc || !doc->IsObject()) return std::nullopt;
  return doc;
}

std::optional<std::string> get_string(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return std::nullopt;
  const auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<long long> get_lenient_int(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return std::nullopt;
  const auto it = object.FindMember(key);
  if (it == object.MemberEnd()) return std::nullopt;
  const auto& v = it->value;
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsDouble()) {
    // Out-of-range doubles (1e300, inf) have no integer value: casting them is undefined.
    const double d = v.GetDouble();
    if (!(d > -9.2e18 && d < 9.2e18)) return std::nullopt;
    return static_cast<long long>(d);
  }
  if (v.IsString()) {
    long long out = 0;
    const char* begin = v.GetString();
    const char* end = begin + v.GetStringLength();
    const auto [ptr, ec] = std::from_chars(begin, end, out);
    if (ec == std::errc() && ptr == end) return out;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> get_string_array(const rapidjson::Value& object,
                                                         const char* key) {
  if (!object.IsObject()) return std::nullopt;
  const auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsArray()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : it->value.GetArray()) {
    if (!item.IsString()) return std::nullopt;
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

std::string to_string(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  // A number that overflowed to infinity while parsing cannot be written as JSON.
  if (!value.Accept(writer)) return {};
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool equal(const rapidjson::Value& a, const rapidjson::Value& b) {
  return a == b;
}

}  // namespace g2m::json
