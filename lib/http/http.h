#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace g2m {

enum class TransportError { none, network, timeout, tls };

// Which waiting request is sent first when more wait than the client sends at once (CurlHttp
// hands libcurl at most max_active transfers and queues the rest): protocol deadlines before
// bulk work. FIFO within a priority.
enum class HttpPriority {
  urgent,  // a deadline the protocol sets: token polls, refreshes close to expiry
  normal,  // the default: device-code requests, discovery, commands
  bulk,    // may wait: scheduled Graph fetches
};

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;               // POST: form-encoded unless a Content-Type header says otherwise
  std::optional<Millis> timeout;  // whole request; default: the client's
  HttpPriority priority = HttpPriority::normal;  // only matters while requests queue
  // For diagnosing a TLS connection that is not HTTP (the broker): connect and handshake only,
  // trusting exactly `ca_file`, presenting `client_cert`/`client_key` when given.
  bool connect_only = false;
  std::optional<std::string> ca_file, client_cert, client_key;
};

// A failed transfer is a value: status 0 and a transport error. HTTP 4xx/5xx is a status.
struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
  std::optional<std::string> retry_after;  // raw header value
  TransportError error = TransportError::none;
  std::string error_message;  // curl's words, for logs (never contains the request body)
  bool truncated = false;     // body exceeded the client's limit and was cut

  bool ok() const { return error == TransportError::none; }
};

// The narrow port the rest of the agent sends HTTP through.
class Http {
 public:
  using RequestId = std::uint64_t;
  using Callback = std::function<void(HttpResponse)>;
  virtual ~Http() = default;
  // The callback runs later on the loop thread, exactly once, unless cancel() is called first.
  virtual RequestId send(HttpRequest request, Callback callback) = 0;
  virtual void cancel(RequestId id) = 0;
};

// application/x-www-form-urlencoded from name/value pairs (values escaped by libcurl).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
// Decodes application/x-www-form-urlencoded text into name/value pairs (GitHub answers this way).
std::vector<std::pair<std::string, std::string>> form_decode(const std::string& text);
// Percent-encodes one URL component.
std::string url_escape(const std::string& text);

}  // namespace g2m
