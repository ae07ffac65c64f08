#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace g2m::json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// JSON nested deeper than this is invalid wherever it comes from (CONTRACT §6 Untrusted input):
// RapidJSON's default parser recurses once per level, and everything that walks a Document
// (Accept, ==, copying) still does, so an unbounded depth is a stack overflow waiting to happen.
inline constexpr int kMaxDepth = 256;

enum class ParseError {
  none,
  syntax,    // not JSON
  encoding,  // JSON, but not valid UTF-8
  too_deep,  // arrays and objects nested deeper than kMaxDepth
};
const char* describe(ParseError error);

// Whether no array or object in `text` is nested deeper than `max_depth` (brackets inside strings
// do not count). A linear scan without recursion; it does not check anything else.
bool within_depth(std::string_view text, int max_depth = kMaxDepth);

// Parses text that must be one JSON value; nullopt when it is not JSON at all (or not UTF-8, or
// nested deeper than kMaxDepth: `error` says which). Every JSON read by the agent goes through
// here or parse_insitu(); never call rapidjson's Parse directly.
std::optional<rapidjson::Document> parse(std::string_view text, ParseError* error = nullptr);
// The same, but only a JSON object counts.
std::optional<rapidjson::Document> parse_object(std::string_view text);
// Parses a NUL-terminated buffer of `size` bytes in place (strings point into it: the caller owns
// the bytes and may wipe them afterwards). On failure `message` (if given) says why, with the
// byte offset of a syntax error.
ParseError parse_insitu(rapidjson::Document& doc, char* text, std::size_t size,
                        std::string* message = nullptr);

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
