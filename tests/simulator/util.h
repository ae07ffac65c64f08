// Small helpers shared by the simulator: randomness, encodings, time formats, JSON output.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace g2m::sim {

// Cryptographically random bytes, base64url without padding (tokens, device codes).
std::string random_token(std::size_t bytes);
// A random version-4 GUID, lower case (trace ids, request ids).
std::string random_guid();
// A GUID derived from a name, so a user or tenant keeps the same id across sign-ins.
std::string name_guid(std::string_view name);
// Nine upper-case alphanumerics, the shape of Microsoft's user codes (E4AAFX9VN).
std::string random_user_code();

std::string base64url(std::string_view data);
// The raw 32-byte SHA-256 digest (PKCE S256: base64url(sha256(verifier))).
std::string sha256(std::string_view data);
std::string url_decode(std::string_view text);
std::string url_encode(std::string_view text);
std::string html_escape(std::string_view text);
std::string to_lower(std::string_view text);
bool is_guid(std::string_view text);

// application/x-www-form-urlencoded; the first value of a repeated name wins.
std::map<std::string, std::string> parse_form(std::string_view body);
std::vector<std::string> split_spaces(std::string_view text);

std::int64_t now_ms();
std::int64_t now_seconds();
// "2026-11-26 19:04:05Z", the form of Microsoft's error timestamps.
std::string ms_timestamp();
// "2026-11-26T19:04:05", the form of Graph's innerError date.
std::string graph_date();
// Parses ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]" into UTC seconds.
std::optional<std::int64_t> parse_iso8601(std::string_view text);
// "2026-11-26T09:00:00.0000000", Graph's dateTimeTimeZone form.
std::string graph_datetime(std::int64_t utc_seconds);

// A TCP socket of this process found by its ports (httplib keeps its sockets to itself): the
// connection from `peer_port` to `local_port`, or with peer_port -1 the listener on local_port.
// -1 when there is none.
int find_socket(int local_port, int peer_port);

// A thin wrapper over RapidJSON's writer: every value is escaped by RapidJSON.
class Json {
 public:
  Json() : writer_(buffer_) {}
  Json& begin_object();
  Json& end_object();
  Json& begin_array();
  Json& end_array();
  Json& key(std::string_view name);
  Json& str(std::string_view value);
  Json& num(std::int64_t value);
  Json& real(double value);
  Json& boolean(bool value);
  Json& null();
  // Raw already-serialised JSON (only ever produced by another Json).
  Json& raw(std::string_view json);
  Json& field(std::string_view name, std::string_view value) { return key(name).str(value); }
  Json& field(std::string_view name, const char* value) { return key(name).str(value); }
  Json& field(std::string_view name, const std::string& value) { return key(name).str(value); }
  Json& field_num(std::string_view name, std::int64_t value) { return key(name).num(value); }
  Json& field_bool(std::string_view name, bool value) { return key(name).boolean(value); }
  Json& field_null(std::string_view name) { return key(name).null(); }
  // An integer that string_numbers mode (and v1) sends as a string, as the legacy endpoint does.
  Json& field_int(std::string_view name, std::int64_t value, bool as_string);
  std::string text() const { return buffer_.GetString(); }

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace g2m::sim
