// Fuzzes TokenStore::load(): the whole of the input is the content of a token file.
//
// The file is written (truncated, rewritten) into one scratch folder made at start-up, so a run
// costs one small write and no directory churn.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fuzz_support.h"
#include "identity/token_store.h"

namespace {

using g2m::fuzz::require;

std::filesystem::path scratch;
const std::string kAccount = "kitchen";
// The binding of the seed files, so that mutations of a good file still reach the end of load().
const g2m::TokenBinding kBinding{"00000000-0000-0000-0000-000000000000", "common",
                                 "https://login.microsoftonline.com", "v2"};

// The token strings a file holds (when long enough not to turn up in a message by chance).
std::vector<std::string> secrets_in(const std::string& text) {
  std::vector<std::string> out;
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return out;
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
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
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

void write_token_file(const g2m::TokenStore& store, const std::uint8_t* data, std::size_t size) {
  const std::string path = store.file_for(kAccount).string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  require(fd >= 0, "the scratch token file can be written");
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    require(n > 0, "the scratch token file can be written");
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = g2m::fuzz::scratch_dir("g2m-fuzz-tokens");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const g2m::TokenStore store(scratch);
  write_token_file(store, data, size);

  const auto result = store.load(kAccount, kBinding);
  using Kind = g2m::TokenStore::LoadResult::Kind;
  require(result.kind != Kind::none && result.kind != Kind::unreadable,
          "a regular, readable file is never missing or unreadable");
  require(result.tokens.has_value() == (result.kind == Kind::ok), "tokens come with ok only");
  if (result.kind == Kind::ok) {
    require(!result.tokens->access_token.empty(), "loaded tokens have an access token");
    require(result.message.empty(), "ok says nothing");
  } else {
    require(!result.message.empty(), "a refused file says why");
    const std::string text(g2m::fuzz::as_text(data, size));
    for (const auto& secret : secrets_in(text)) {
      if (result.message.find(secret) == std::string::npos) continue;
      // The fuzzer can spell a token out of the message's own words (the file's path, "is
      // corrupt: ..."). It is a leak only if the message follows the token: load the same file
      // with another token of that length and see whether the text is still there.
      const std::string other = with_token_replaced(text, secret);
      write_token_file(store, reinterpret_cast<const std::uint8_t*>(other.data()), other.size());
      const auto again = store.load(kAccount, kBinding);
      require(again.message.find(secret) != std::string::npos, "a message never holds a token");
    }
  }
  return 0;
}
