#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace g2m::json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses text that must be one JSON value; nullopt when it is not JSON at all.
std::optional<rapidjson::Document> parse(std::string_view text);
// The same, but only a JSON object counts.
std::optional<rapidjson::Document> parse_object(std::string_view text);

std::optional<std::string> get_string(const rapidjson::Value& object, const char* key);
// A number, or a string holding one: providers differ (Microsoft's v1 sends "900").
std::optional<long long> get_lenient_int(const rapidjson::Value& object, const char* key);
std::optional<std::vector<std::string>> get_string_array(const rapidjson::Value& object,
                                                         const char* key);

// Serialises a value back to compact text; "" when it cannot be JSON (an infinite number).
std::string to_string(const rapidjson::Value& value);

// Structural equality of two JSON texts (used for "publish only when it changes").
bool equal(const rapidjson::Value& a, const rapidjson::Value& b);

inline void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void write_key(Writer& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void write_optional_string(Writer& w, const std::optional<std::string>& s) {
  if (s)
    write_string(w, *s);
  else
    w.Null();
}

}  // namespace g2m::json

namespace g2m::json {

// Writes the members of one JSON object: a thin, readable layer over RapidJSON's writer for
// payloads built field by field (events, states, replies).
class Fields {
 public:
  explicit Fields(Writer& w) : w_(w) {}
  Fields& str(std::string_view key, std::string_view value) {
    write_key(w_, key);
    write_string(w_, value);
    return *this;
  }
  Fields& opt_str(std::string_view key, const std::optional<std::string>& value) {
    write_key(w_, key);
    write_optional_string(w_, value);
    return *this;
  }
  Fields& num(std::string_view key, long long value) {
    write_key(w_, key);
    w_.Int64(value);
    return *this;
  }
  Fields& opt_num(std::string_view key, std::optional<long long> value) {
    write_key(w_, key);
    if (value)
      w_.Int64(*value);
    else
      w_.Null();
    return *this;
  }
  Fields& boolean(std::string_view key, bool value) {
    write_key(w_, key);
    w_.Bool(value);
    return *this;
  }
  Fields& null(std::string_view key) {
    write_key(w_, key);
    w_.Null();
    return *this;
  }
  // `json` must be one serialised JSON value.
  Fields& raw(std::string_view key, std::string_view json) {
    write_key(w_, key);
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  Fields& strings(std::string_view key, const std::vector<std::string>& values) {
    write_key(w_, key);
    w_.StartArray();
    for (const auto& v : values) write_string(w_, v);
    w_.EndArray();
    return *this;
  }

 private:
  Writer& w_;
};

// Builds one JSON object from a function that fills its fields.
template <typename Fill>
std::string object(Fill&& fill) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Fields fields(w);
  fill(fields);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace g2m::json
