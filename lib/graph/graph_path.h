#pragma once

#include <optional>
#include <string>

namespace g2m {

// The Graph path policy of the `graph` command (CONTRACT §2 `graph`): which paths may be appended
// to the Graph base with the account's token.

// nullopt when `path` is safe to append to the Graph base, else the sentence that says why not:
// it must start with /; no . or .. segments (also percent-encoded, or followed by `;` as in
// `..;`); no //, ://, backslash, space or control character; and, because servers and proxies
// between us and Graph decode differently, no percent-encoding of `.`, `/`, `\` or a control
// character, no %u escapes, no overlong or otherwise invalid UTF-8 (%c0%ae), no malformed %, and
// no look-alike of a dot, slash or backslash (fullwidth U+FF0E, ...).
std::optional<std::string> check_graph_path(const std::string& path);

// True when `path` starts with `prefix` on a segment boundary (/me allows /me/x and /me?x).
bool path_allowed_by(const std::string& path, const std::string& prefix);

}  // namespace g2m
