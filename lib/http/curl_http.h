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
#include "http/request_queue.h"
#include "loop/event_loop.h"

struct x509_store_st;  // OpenSSL's X509_STORE, kept out of this header

namespace g2m {

struct CurlHttpOptions {
  Millis timeout{30'000};
  std::optional<std::filesystem::path> extra_ca;  // added to the system trust store
  // Else the environment's (see http/proxy_environment.h): libcurl honours HTTPS_PROXY,
  // https_proxy, http_proxy, ALL_PROXY and NO_PROXY as it would on its own.
  std::optional<std::string> proxy;
  long max_host_connections = 4;  // requests queue for a connection instead of opening hundreds
  // Transfers handed to libcurl at once; the rest wait here, so a request's timeout starts when
  // it is really sent and 1,000 waiting requests cost a queue entry each, not a curl handle.
  // They start in HttpRequest::priority order (FIFO within a priority).
  std::size_t max_active = 16;
  // The same once answers come over HTTP/2 (as from Microsoft's endpoints): streams on one
  // connection do not wait for each other, so more of them may be in libcurl at once. 16
  // streams carry 1,000 polls a second only with a round trip under 16 ms.
  std::size_t max_active_multiplexed = 64;
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
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct Transfer;
  struct MultiDeleter {
    void operator()(CURLM* m) const { curl_multi_cleanup(m); }
  };
  struct ShareDeleter {
    void operator()(CURLSH* s) const { curl_share_cleanup(s); }
  };
  struct StoreDeleter {
    void operator()(x509_store_st* s) const;
  };
  using TrustStore = std::unique_ptr<x509_store_st, StoreDeleter>;

  static TrustStore build_trust_store(const std::string& extra_ca_pem);
  bool start(Transfer& transfer);  // creates the easy handle and adds it to the multi handle
  void finish_done_transfers();
  void start_waiting();
  static size_t on_body(char* data, size_t size, size_t count, void* user);
  static CURLcode on_ssl_ctx(CURL* curl, void* ssl_ctx, void* user);
  // Logs a failed curl_multi_* call (once until that call succeeds again). True when it worked.
  bool check(CURLMcode code, const char* call);

  CurlHttpOptions options_;
  Logger& log_;
  std::unique_ptr<CURLM, MultiDeleter> multi_;
  std::unique_ptr<CURLSH, ShareDeleter> share_;
  TrustStore trust_;          // system CAs + identity.ca, shared by every connection
  std::string extra_ca_pem_;  // only when trust_ could not be built (libcurl loads the CAs then)
  RequestId next_id_ = 1;
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> transfers_;  // active and waiting
  RequestQueue<RequestId> waiting_;  // may hold cancelled ids: skipped when their turn comes
  std::deque<RequestId> failed_;     // could not be started; answered at the next poll()
  std::size_t active_ = 0;
  bool multiplexed_ = false;                            // the last answer came over HTTP/2 or later
  std::unordered_map<std::string, CURLMcode> failing_;  // curl_multi_* calls that last failed
};

}  // namespace g2m
