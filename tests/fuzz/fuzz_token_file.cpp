// Fuzzes the token-file codec (token_file::decode, what TokenStore::load() runs on a file's
// bytes): the whole of the input is the content of a token file. No file system: the POSIX side
// of the store does not depend on the content.

#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fuzz_support.h"
#include "identity/token_file_codec.h"
#include "json/json.h"

namespace {

using g2m::fuzz::require;

// The binding of the seed files, so that mutations of a good file still reach the end of load().
const g2m::TokenBinding kBinding{"00000000-0000-0000-0000-000000000000", "common",
                                 "https://login.microsoftonline.com", "v2"};

// The token strings a file holds (when long enough not to turn up in a message by chance).
std::vector<std::string> secrets_in(const std::string& text) {
  std::vector<std::string> out;
  // json::parse, not rapidjson's recursive Parse: the input may be nested 100,000 deep.
  auto parsed = g2m::json::parse_object(text);
  if (!parsed) return out;
  const rapidjson::Document& doc = *parsed;
  // HasMember and operator[], not FindMember: rapidjson 1.1's iterator comparisons are
  // ambiguous in C++20 (-Wambiguous-reversed-operator).
  for (const char* key : {"access_token", "refresh_token"}) {
    if (!doc.HasMember(key)) continue;
    const rapidjson::Value& v = doc[key];
    if (v.IsString() && v.GetStringLength() >= 12)
      out.emplace_back(v.GetString(), v.GetStringLength());
  }
  // A token equal to a binding value would be printed as that value: not a leak.
  if (doc.HasMember("binding") && doc["binding"].IsObject()) {
    const rapidjson::Value& binding = doc["binding"];
    for (rapidjson::SizeType i = 0; i < binding.MemberCount(); ++i) {
      const rapidjson::Value& v = (binding.MemberBegin() + i)->value;
      if (!v.IsString()) continue;
      const std::string value(v.GetString(), v.GetStringLength());
      std::erase_if(
          out, [&](const std::string& secret) { return value.find(secret) != std::string::npos; });
    }
  }
  return out;
}

// The file rewritten with the token `secret` replaced by another string of the same length (or
// "" when the text is not a JSON object holding it).
std::string with_token_replaced(const std::string& text, const std::string& secret) {
  auto parsed = g2m::json::parse_object(text);
  if (!parsed) return "";
  rapidjson::Document& doc = *parsed;
  const char filler = secret.find('Q') == std::string::npos ? 'Q' : 'q';
  const std::string other(secret.size(), filler);
  for (const char* key : {"access_token", "refresh_token"}) {
    if (!doc.HasMember(key) || !doc[key].IsString()) continue;
    if (std::string(doc[key].GetString(), doc[key].GetStringLength()) != secret) continue;
    doc[key].SetString(other.data(), static_cast<rapidjson::SizeType>(other.size()),
                       doc.GetAllocator());
  }
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  doc.Accept(writer);
  return std::string(out.GetString(), out.GetSize());
}

// decode() the way TokenStore::load() calls it: a private, NUL-terminated copy parsed in place.
g2m::token_file::Decoded decode(const std::string& text) {
  std::string buffer = text;
  buffer.push_back('\0');
  auto decoded = g2m::token_file::decode(buffer.data(), text.size(), kBinding);
  g2m::token_file::wipe(buffer);
  return decoded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(g2m::fuzz::as_text(data, size));
  const auto result = decode(text);
  using Kind = g2m::token_file::Decoded::Kind;
  require(result.tokens.has_value() == (result.kind == Kind::ok), "tokens come with ok only");
  if (result.kind == Kind::ok) {
    require(!result.tokens->access_token.empty(), "loaded tokens have an access token");
    require(result.reason.empty(), "ok says nothing");
    // What was decoded encodes again to a file that decodes to the same tokens.
    std::string again = g2m::token_file::encode(kBinding, *result.tokens);
    const auto round = decode(again);
    g2m::token_file::wipe(again);
    require(round.kind == Kind::ok, "an encoded token set decodes");
    require(round.tokens->access_token == result.tokens->access_token &&
                round.tokens->refresh_token == result.tokens->refresh_token &&
                round.tokens->scopes == result.tokens->scopes &&
                round.tokens->user == result.tokens->user,
            "encode and decode round-trip");
  } else {
    require(!result.reason.empty(), "a refused file says why");
    for (const auto& secret : secrets_in(text)) {
      if (result.reason.find(secret) == std::string::npos) continue;
      // The fuzzer can spell a token out of the reason's own words ("is missing or not ...").
      // It is a leak only if the reason follows the token: decode the same file with another
      // token of that length and see whether the text is still there.
      const auto again = decode(with_token_replaced(text, secret));
      require(again.reason.find(secret) != std::string::npos, "a reason never holds a token");
    }
  }
  return 0;
}
