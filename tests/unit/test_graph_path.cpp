#include <doctest/doctest.h>

#include <string>

#include "graph/graph_path.h"

using namespace g2m;

namespace {
// The sentence a refused path gets ("" when it is allowed).
std::string refusal(const std::string& path) {
  return check_graph_path(path).value_or("");
}
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("graph path: ordinary Graph paths are allowed") {
  for (const char* ok : {
           "/me", "/me/presence", "/me/presence?$select=availability",
           "/me?$select=displayName,mail",
           "/me/"
           "calendarView?startDateTime=2026-11-26T00%3A00%3A00Z&endDateTime=2026-11-27T00%3A00%"
           "3A00Z",
           "/users/adele@contoso.com/presence", "/me/messages?$top=2&$filter=isRead%20eq%20false",
           "/sites/root/lists/x.y/items",  // a dot inside a segment is not a dot segment
           "/me/drive/root:/file.txt:",
           "/me/events?$search=%22caf%C3%A9%22",  // percent-encoded UTF-8, well formed
           "/me/people/Zo\xC3\xAB",
           "/me/...",  // three dots are a name, not a dot segment
       }) {
    CAPTURE(ok);
    CHECK(refusal(ok) == "");
  }
}

TEST_CASE("graph path: the contract's refusals keep their words") {
  CHECK(contains(refusal("me"), "start with /"));
  CHECK(contains(refusal(""), "start with /"));
  CHECK(contains(refusal("/me/../users"), "segments"));
  CHECK(contains(refusal("/me/./presence"), "segments"));
  CHECK(contains(refusal("/me/.."), "segments"));
  CHECK(contains(refusal("/me/%2e%2e/users"), "segments"));
  CHECK(contains(refusal("/me/%2E/x"), "segments"));
  CHECK(contains(refusal("/me/.%2E/users"), "segments"));
  CHECK(contains(refusal("/me//x"), "//"));
  CHECK(contains(refusal("/https://evil.example/x"), "//"));
  CHECK(contains(refusal("/me\\x"), "backslash"));
  CHECK(contains(refusal("/me x"), "space"));
  CHECK(contains(refusal("/me\nx"), "control"));
  CHECK(contains(refusal(std::string("/me\0x", 5)), "control"));
  CHECK(contains(refusal("/me\x7f"), "control"));
}

TEST_CASE("graph path: hostile encodings of dots, slashes and backslashes are refused") {
  for (const char* bad : {
           "/me/%5Cusers",                        // encoded backslash
           "/me/%5c..%5cusers",                   // ... used to climb
           "/me/%u002e%u002e/users",              // IIS %u escapes
           "/me/%c0%ae%c0%ae/users",              // overlong UTF-8 dot
           "/me/%c0%af",                          // overlong UTF-8 slash
           "/me/%e0%80%ae",                       // three-byte overlong dot
           "/me/\xEF\xBC\x8E\xEF\xBC\x8E/users",  // fullwidth full stops U+FF0E
           "/me/%EF%BC%8E%EF%BC%8E/users",        // ... percent-encoded
           "/me/\xEF\xBC\x8F"
           "users",          // fullwidth solidus U+FF0F
           "/me/..;/users",  // Tomcat path parameter
           "/me/.;x/presence",
           "/me%00/presence",                // NUL
           "/me/presence%0d%0aX-Evil:%201",  // header injection
           "/me?$select=a%0aB",              // a control character, also in the query
           "/me%2fpresence",                 // encoded slash
           "/me/presence?x=%2e",             // any encoded dot
           "/me/%2",                         // a % without two hex digits
           "/me/%zz",
           "/me/%",
           "/me/%ed%a0%80",  // an encoded surrogate
           "/me/%ff",        // not UTF-8 at all
       }) {
    CAPTURE(bad);
    CHECK_FALSE(refusal(bad).empty());
  }
}

TEST_CASE("graph path: each hostile form gets a sentence that names what is wrong") {
  CHECK(contains(refusal("/me/%5C"), "percent-encode"));
  CHECK(contains(refusal("/me/%00"), "percent-encode"));
  CHECK(contains(refusal("/me/%0d%0a"), "percent-encode"));
  CHECK(contains(refusal("/me%2fx"), "percent-encode"));
  CHECK(contains(refusal("/me/%u002e"), "two hex digits"));
  CHECK(contains(refusal("/me/%c0%ae"), "UTF-8"));
  CHECK(contains(refusal("/me/\xEF\xBC\x8E"), "look-alike"));
  CHECK(contains(refusal("/me/..;/x"), "segments"));
  // A %3F is not the start of the query: the dots after it are still a segment of the route.
  CHECK(contains(refusal("/me%3F/../users"), "segments"));
}

TEST_CASE("graph path: graph_allow prefixes match on a segment boundary") {
  CHECK(path_allowed_by("/me", "/me"));
  CHECK(path_allowed_by("/me/presence", "/me"));
  CHECK(path_allowed_by("/me?$select=x", "/me"));
  CHECK(path_allowed_by("/me/x", "/me/"));
  CHECK_FALSE(path_allowed_by("/me2", "/me"));
  CHECK_FALSE(path_allowed_by("/messages", "/me"));
  CHECK_FALSE(path_allowed_by("/m", "/me"));
  CHECK_FALSE(path_allowed_by("/me", ""));
}
