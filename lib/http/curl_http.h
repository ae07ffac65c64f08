#pragma once

#include <curl/curl.h>

#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/logger.h"
#include "http/http.h"
#include "loop/event_loop.h"

namespace g2m {

struct CurlHttpOptions {
  Millis timeout{30'000};
  std::optional<std::filesystem::path> extra_ca;  // added to the system trust store
  std::optional<std::string> proxy;               // else libcurl reads HTTPS_PROXY / NO_PROXY
  long max_host_connections = 4;  // requests queue for a connection instead of opening hundreds
  // Transfers handed to libcurl at once; the rest wait here, so a request's timeout starts when
  // it is really sent and 1,000 waiting requests cost a queue entry each, not a curl handle.
  std::size_t max_active = 16;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
};

// All HTTP through one curl multi handle, driven by the event loop (it is the loop's Poller).
// Connections, DNS and TLS sessions are reused: a gateway pays for a handshake once.
class CurlHttp final : public Http, public Poller {
 public:
  CurlHttp(CurlHttpOptions options, Logger& log);
  ~CurlHttp() override;
  CurlHttp(const CurlHttp&) = delete;
  CurlHttp& operator=(const CurlHttp&) = delete;

  RequestId send(HttpRequest request, Callback callback) override;
  void cancel(RequestId id) override;

  void poll(Millis timeout) override;
  void wake() override;

  std::size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;
  struct MultiDeleter {
    void operator()(CURLM* m) const { curl_multi_cleanup(m); }
  };
  struct ShareDeleter {
    void operator()(CURLSH* s) const { curl_share_cleanup(s); }
  };

  void finish_done_transfers();
  void start_waiting();
  static size_t on_body(char* data, size_t size, size_t count, void* user);
  static CURLcode on_ssl_ctx(CURL* curl, void* ssl_ctx, void* user);

  CurlHttpOptions options_;
  Logger& log_;
  std::unique_ptr<CURLM, MultiDeleter> multi_;
  std::unique_ptr<CURLSH, ShareDeleter> share_;
  std::string extra_ca_pem_;
  RequestId next_id_ = 1;
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> transfers_;  // active and waiting
  std::deque<RequestId> waiting_;
  std::size_t active_ = 0;
};

}  // namespace g2m
