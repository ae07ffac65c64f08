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

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = g2m::fuzz::scratch_dir("g2m-fuzz-tokens");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const g2m::TokenStore store(scratch);
  {
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
    for (const auto& secret : secrets_in(std::string(g2m::fuzz::as_text(data, size)))) {
      require(result.message.find(secret) == std::string::npos, "a message never holds a token");
    }
  }
  return 0;
}
