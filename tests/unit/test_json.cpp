// lib/json: the one way the agent reads JSON (docs/mqtt-api.md "Untrusted input": nested deeper
// than 256 levels is invalid wherever it comes from).
#include <doctest/doctest.h>

#include <string>

#include "json/json.h"

using namespace g2m;

namespace {
std::string nested_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}
std::string nested_objects(std::size_t depth) {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += R"({"a":)";
  out += "1";
  out += std::string(depth, '}');
  return out;
}
}  // namespace

TEST_CASE("json: 256 levels of nesting parse, 257 are too deep") {
  for (const auto& [text, deep] :
       {std::pair{nested_arrays(256), false}, std::pair{nested_arrays(257), true},
        std::pair{nested_objects(256), false}, std::pair{nested_objects(257), true}}) {
    CAPTURE(text.substr(0, 8));
    json::ParseError why = json::ParseError::none;
    const auto doc = json::parse(text, &why);
    CHECK(doc.has_value() == !deep);
    CHECK(why == (deep ? json::ParseError::too_deep : json::ParseError::none));
  }
}

TEST_CASE("json: 200,000 open brackets are too deep, not a stack overflow") {
  // RapidJSON's recursive parser overflowed an 8 MiB stack at about 150 KB of `[`.
  for (const std::string& text :
       {std::string(200000, '['), nested_arrays(200000), std::string(100000, '{') + "}",
        "{\"a\":" + std::string(200000, '[')}) {
    json::ParseError why = json::ParseError::none;
    CHECK_FALSE(json::parse(text, &why).has_value());
    CHECK(why == json::ParseError::too_deep);
    CHECK_FALSE(json::parse_object(text).has_value());
    std::string buffer = text;
    rapidjson::Document doc;
    std::string message;
    CHECK(json::parse_insitu(doc, buffer.data(), buffer.size(), &message) ==
          json::ParseError::too_deep);
    CHECK(message == "JSON nested deeper than 256 levels");
  }
}

TEST_CASE("json: brackets inside strings do not count as nesting") {
  const std::string text = R"({"a":")" + std::string(1000, '[') + R"(\"[[[","b":[1]})";
  const auto doc = json::parse(text);
  REQUIRE(doc.has_value());
  CHECK((*doc)["a"].GetStringLength() == 1004);
  CHECK(json::within_depth(text, 2));
  CHECK_FALSE(json::within_depth(text, 1));
  CHECK_FALSE(json::within_depth(R"({"a":[1]})", 1));
  CHECK(json::within_depth(R"({"a":[1]})", 2));
  // An escaped backslash ends the escape: the quote after it closes the string.
  CHECK_FALSE(json::within_depth(R"(["\\",[[]]])", 2));
  CHECK(json::within_depth(R"(["\\",[[]]])", 3));
}

TEST_CASE("json: bad UTF-8 and bad JSON are told apart") {
  json::ParseError why = json::ParseError::none;
  CHECK_FALSE(json::parse("{\"a\":\"\xff\"}", &why));
  CHECK(why == json::ParseError::encoding);
  CHECK_FALSE(json::parse("{\"a\":\"\xff\"", &why));
  CHECK(why == json::ParseError::syntax);
  CHECK_FALSE(json::parse("{} trailing", &why));
  CHECK(why == json::ParseError::syntax);
  CHECK(json::parse(R"({"a":[1,2,{"b":null}]})", &why));
  CHECK(why == json::ParseError::none);
}

TEST_CASE("json: parse_insitu parses in place and names a syntax error's offset") {
  std::string buffer = R"({"token":"abc"})";
  rapidjson::Document doc;
  REQUIRE(json::parse_insitu(doc, buffer.data(), buffer.size()) == json::ParseError::none);
  CHECK(std::string(doc["token"].GetString()) == "abc");
  // The string points into the buffer: wiping the buffer wipes the value.
  CHECK(doc["token"].GetString() >= buffer.data());
  CHECK(doc["token"].GetString() < buffer.data() + buffer.size());

  std::string bad = R"({"token":)";
  rapidjson::Document other;
  std::string message;
  CHECK(json::parse_insitu(other, bad.data(), bad.size(), &message) == json::ParseError::syntax);
  CHECK(message.find("not valid JSON (") == 0);
  CHECK(message.find("at offset 9") != std::string::npos);
}

TEST_CASE("json: half a UTF-16 pair is not UTF-8, in place or not") {
  // A lone low surrogate would decode to bytes that are not UTF-8 (rapidjson lets it through).
  for (const char* text : {R"({"a":"x\ude00y"})", R"({"a":"\uDFFF"})", R"(["\udc00"])"}) {
    CAPTURE(text);
    json::ParseError why = json::ParseError::none;
    CHECK_FALSE(json::parse(text, &why).has_value());
    CHECK(why == json::ParseError::encoding);
    std::string buffer = text;
    rapidjson::Document doc;
    std::string message;
    CHECK(json::parse_insitu(doc, buffer.data(), buffer.size(), &message) ==
          json::ParseError::encoding);
    CHECK(message.find("not valid UTF-8") == 0);
  }
  // A whole pair, an escaped backslash before "u", and surrogate-looking text outside strings.
  for (const char* text :
       {R"({"a":"\ud83d\ude00"})", R"({"a":"\\ude00"})", R"({"a":"\ud83d\ude00\ud83d\ude00"})"}) {
    CAPTURE(text);
    CHECK(json::parse(text).has_value());
    std::string buffer = text;
    rapidjson::Document doc;
    CHECK(json::parse_insitu(doc, buffer.data(), buffer.size()) == json::ParseError::none);
  }
  json::ParseError why = json::ParseError::none;
  CHECK_FALSE(json::parse(R"({"a":"\ude00")", &why).has_value());
  CHECK(why == json::ParseError::syntax);  // bad JSON first
}

TEST_CASE("json: a text that ends inside a character is refused before parsing in place") {
  // rapidjson would read the continuation bytes of the last character past the terminator.
  for (const std::string& text :
       {std::string("{\"a\":\"\xf0"), std::string("{\"a\":\"\xe2\x82"), std::string("[\"\xc3")}) {
    std::string buffer = text;
    rapidjson::Document doc;
    CHECK(json::parse_insitu(doc, buffer.data(), buffer.size()) == json::ParseError::encoding);
  }
  std::string whole = "[\"\xe2\x82\xac\"]";  // the euro sign, whole
  rapidjson::Document doc;
  CHECK(json::parse_insitu(doc, whole.data(), whole.size()) == json::ParseError::none);
}
