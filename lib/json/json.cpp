#include "json/json.h"

#include <charconv>

#include <rapidjson/error/en.h>

namespace g2m::json {

const char* describe(ParseError error) {
  switch (error) {
    case ParseError::none:
      return "valid JSON";
    case ParseError::syntax:
      return "not valid JSON";
    case ParseError::encoding:
      return "not valid UTF-8";
    case ParseError::too_deep:
      return "JSON nested deeper than 256 levels";
  }
  return "not valid JSON";
}

bool within_depth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced text is the parser's to refuse
    }
  }
  return true;
}

namespace {

// The iterative parser keeps its state on the heap: even a text that slipped past the depth
// scan could not overflow the stack while parsing.
constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Whether the last bytes of `text` start a UTF-8 sequence that the text ends before. rapidjson's
// encoding check takes a lead byte's continuation bytes without looking for the end: in place,
// such a text makes it read up to three bytes past the terminating NUL (found by fuzz_token_file).
bool ends_inside_utf8_sequence(const char* text, std::size_t size) {
  for (std::size_t back = 1; back <= 3 && back <= size; ++back) {
    const auto byte = static_cast<unsigned char>(text[size - back]);
    if (byte < 0xC0) continue;  // ASCII or a continuation byte
    const std::size_t needs = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : 1;
    if (needs >= back) return true;
  }
  return false;
}

// Whether a string in `text` holds a \uDC00..\uDFFF escape that does not follow a high
// surrogate's escape. rapidjson refuses a lone high surrogate but turns a lone low one into
// bytes that are not UTF-8: a value read that way could not be written and read back (a token
// file would load once, then never again; found by fuzz_token_file).
bool has_lone_low_surrogate(std::string_view text) {
  auto hex4 = [&text](std::size_t at) -> int {
    if (at + 4 > text.size()) return -1;
    int value = 0;
    for (std::size_t i = at; i < at + 4; ++i) {
      const char c = text[i];
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  };
  bool in_string = false;
  std::size_t after_high = std::string_view::npos;  // where an escaped high surrogate ended
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!in_string) {
      in_string = c == '"';
      continue;
    }
    if (c == '"') {
      in_string = false;
    } else if (c == '\\' && i + 1 < text.size()) {
      if (text[i + 1] == 'u') {
        const int unit = hex4(i + 2);
        if (unit >= 0xDC00 && unit <= 0xDFFF && after_high != i) return true;
        after_high = unit >= 0xD800 && unit <= 0xDBFF ? i + 6 : std::string_view::npos;
      }
      ++i;  // the escaped character cannot end the string
    }
  }
  return false;
}

}  // namespace

std::optional<rapidjson::Document> parse(std::string_view text, ParseError* error) {
  auto fail = [error](ParseError why) -> std::optional<rapidjson::Document> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!within_depth(text)) return fail(ParseError::too_deep);
  rapidjson::Document doc;
  // Invalid UTF-8 is not JSON; trailing garbage after the value is a parse error by default.
  doc.Parse<kFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    if (doc.GetParseError() != rapidjson::kParseErrorStringInvalidEncoding)
      return fail(ParseError::syntax);
    // Bad UTF-8 in otherwise good JSON is a different mistake to fix than bad JSON.
    rapidjson::Document plain;
    plain.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    return fail(plain.HasParseError() ? ParseError::syntax : ParseError::encoding);
  }
  if (has_lone_low_surrogate(text)) return fail(ParseError::encoding);
  if (error) *error = ParseError::none;
  return doc;
}

ParseError parse_insitu(rapidjson::Document& doc, char* text, std::size_t size,
                        std::string* message) {
  if (!within_depth(std::string_view(text, size))) {
    if (message) *message = describe(ParseError::too_deep);
    return ParseError::too_deep;
  }
  if (ends_inside_utf8_sequence(text, size) ||
      has_lone_low_surrogate(std::string_view(text, size))) {
    if (message)
      *message = std::string(describe(ParseError::encoding)) +
                 " (a character is cut short or is half of a pair)";
    return ParseError::encoding;
  }
  doc.ParseInsitu<kFlags>(text);
  if (!doc.HasParseError()) return ParseError::none;
  const bool encoding = doc.GetParseError() == rapidjson::kParseErrorStringInvalidEncoding;
  if (message) {
    *message = std::string("not valid JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
               " at offset " + std::to_string(doc.GetErrorOffset()) + ")";
  }
  return encoding ? ParseError::encoding : ParseError::syntax;
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
