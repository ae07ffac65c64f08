#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "identity/token_set.h"

// The token file's format, and nothing else: bytes to tokens and back, no file system. The
// fuzz target fuzz_token_file calls decode() directly.
namespace g2m::token_file {

inline constexpr int kFormatVersion = 1;

// The file's bytes (pretty JSON, version 1, newline-terminated). They hold the tokens: the
// caller wipes them (wipe()) when written. Reserved up front, so no reallocation leaves a copy
// in freed memory.
std::string encode(const TokenBinding& binding, const TokenSet& tokens);

struct Decoded {
  enum class Kind { ok, corrupt, other_binding } kind = Kind::corrupt;
  std::optional<TokenSet> tokens;  // set when ok
  // Why, when not ok, as the end of a sentence about the file: "it is not valid JSON (...)",
  // "version is missing or not 1", "was issued for another tenant (x, the configuration names
  // y)". Never holds a token.
  std::string reason;
};

// Decodes `size` bytes at `text`, which must be followed by a NUL (text[size] == '\0'). Parsed
// in place: the strings are read out of `text`, which the caller wipes afterwards. A file of
// `expected`'s shape but another binding is other_binding (checked after the shape, so a damaged
// file is corrupt whatever it names).
Decoded decode(char* text, std::size_t size, const TokenBinding& expected);

// Zeroes a buffer that held tokens (explicit_bzero: never optimised away) and empties it.
void wipe(std::string& bytes);

// A value from a file, made safe for a message: printable ASCII only (others become '?'), and
// at most 100 characters.
std::string printable(std::string_view text);

}  // namespace g2m::token_file
