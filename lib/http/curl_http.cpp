#include "http/curl_http.h"

#include "http/proxy_environment.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace g2m {

namespace {
struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

TransportError classify(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::timeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return TransportError::tls;
    default:
      return TransportError::network;
  }
}

bool starts_with_nocase(const std::string& text, const char* prefix) {
  const std::size_t n = std::strlen(prefix);
  if (text.size() < n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

// The proxy libcurl would have read from the variables take_proxy_environment() took away.
const std::string* environment_proxy(const std::string& url) {
  const ProxyEnvironment& env = take_proxy_environment();
  if (starts_with_nocase(url, "https://")) return env.https_proxy ? &*env.https_proxy : nullptr;
  if (starts_with_nocase(url, "http://")) return env.http_proxy ? &*env.http_proxy : nullptr;
  return nullptr;
}

std::string optional_header(CURL* easy, const char* name) {
  curl_header* header = nullptr;
  if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &header) == CURLHE_OK && header) {
    return header->value;
  }
  return {};
}
}  // namespace

struct CurlHttp::Transfer {
  RequestId id = 0;
  HttpRequest request;  // kept until the transfer starts, then its body (curl does not copy it)
  Callback callback;
  // Created when the transfer is handed to libcurl, not when it is queued: an easy handle and
  // its buffers take ~6 KiB, and at 1,000 sign-ins ~1,000 requests wait at once.
  std::unique_ptr<CURL, EasyDeleter> easy;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  HttpResponse response;
  std::size_t max_body = 0;
  char error_buffer[CURL_ERROR_SIZE] = {};

  bool active() const { return easy != nullptr; }
};

void CurlHttp::StoreDeleter::operator()(x509_store_st* s) const {
  X509_STORE_free(s);
}

CurlHttp::CurlHttp(CurlHttpOptions options, Logger& log)
    : options_(std::move(options)),
      log_(log),
      multi_(curl_multi_init()),
      share_(curl_share_init()) {
  if (!multi_ || !share_) throw std::runtime_error("cannot initialise libcurl");
  // Before anything connects: the proxies the environment names are libcurl's alone.
  take_proxy_environment();
  // One thread uses the share handle, so it needs no lock callbacks.
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  check(curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX),
        "curl_multi_setopt(PIPELINING)");
  check(
      curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_host_connections),
      "curl_multi_setopt(MAX_HOST_CONNECTIONS)");
  check(curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, options_.max_host_connections * 4),
        "curl_multi_setopt(MAXCONNECTS)");
  std::string extra_ca_pem;
  if (options_.extra_ca) {
    std::ifstream in(*options_.extra_ca);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw std::runtime_error("cannot read " + options_.extra_ca->string());
    extra_ca_pem = text.str();
  }
  trust_ = build_trust_store(extra_ca_pem);
  if (!trust_) extra_ca_pem_ = std::move(extra_ca_pem);  // fallback: libcurl loads the system CAs
}

// The trust store every connection verifies against, built once: libcurl's default CA bundle
// and CA folder (the same files libcurl would load, with the same flags), plus identity.ca.
// Left to itself, libcurl 7.88 parses the whole bundle (~140 certificates, ~40 ms of CPU and
// ~0.5 MiB of heap under OpenSSL 3) for every new connection: its own CA cache stays off because
// Debian's build also sets a CA folder. Returns null when a file cannot be loaded; the caller
// then lets libcurl load them per connection, which reports the error as before.
CurlHttp::TrustStore CurlHttp::build_trust_store(const std::string& extra_ca_pem) {
  std::unique_ptr<CURL, EasyDeleter> probe(curl_easy_init());
  if (!probe) return nullptr;
  char* ca_file = nullptr;
  char* ca_path = nullptr;
  curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &ca_file);
  curl_easy_getinfo(probe.get(), CURLINFO_CAPATH, &ca_path);
  TrustStore store(X509_STORE_new());
  if (!store) return nullptr;
  if (ca_file != nullptr && X509_STORE_load_file(store.get(), ca_file) != 1) return nullptr;
  // A folder is looked up lazily, by subject hash, when a chain needs an issuer.
  if (ca_path != nullptr && X509_STORE_load_path(store.get(), ca_path) != 1) return nullptr;
  // identity.ca is a trust anchor added to the system store, not a replacement for it.
  if (!extra_ca_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(extra_ca_pem.data(), static_cast<int>(extra_ca_pem.size()));
    if (bio == nullptr) return nullptr;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store.get(), cert);  // a duplicate is harmless
      X509_free(cert);
    }
    BIO_free(bio);
    ERR_clear_error();  // PEM_read_bio_X509 ends the loop with a "no start line" error
  }
  // What libcurl sets on the store it builds when it verifies the peer.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
  return store;
}

CurlHttp::~CurlHttp() {
  for (auto& [id, transfer] : transfers_) {
    if (transfer->active()) {
      check(curl_multi_remove_handle(multi_.get(), transfer->easy.get()),
            "curl_multi_remove_handle");
    }
  }
  transfers_.clear();
}

bool CurlHttp::check(CURLMcode code, const char* call) {
  if (code == CURLM_OK) {
    if (!failing_.empty()) failing_.erase(call);
    return true;
  }
  const auto [it, first] = failing_.emplace(call, code);
  if (first || it->second != code) {
    it->second = code;
    log_.error("http: ", call, " failed: ", curl_multi_strerror(code));
  }
  return false;
}

CURLcode CurlHttp::on_ssl_ctx(CURL*, void* ssl_ctx, void* user) {
  const auto* self = static_cast<const CurlHttp*>(user);
  if (self->trust_) {
    // Shared, reference-counted: every connection's SSL_CTX points at the one store.
    SSL_CTX_set1_cert_store(static_cast<SSL_CTX*>(ssl_ctx), self->trust_.get());
    return CURLE_OK;
  }
  // Fallback (the system CAs could not be loaded up front): add identity.ca to libcurl's store.
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
  BIO* bio =
      BIO_new_mem_buf(self->extra_ca_pem_.data(), static_cast<int>(self->extra_ca_pem_.size()));
  if (bio == nullptr) return CURLE_OUT_OF_MEMORY;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);  // a duplicate is harmless
    X509_free(cert);
  }
  BIO_free(bio);
  return CURLE_OK;
}

size_t CurlHttp::on_body(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  auto& body = transfer->response.body;
  if (body.size() + bytes > transfer->max_body) {
    transfer->response.truncated = true;
    return 0;  // aborts the transfer: a body this large is not a Microsoft answer
  }
  body.append(data, bytes);
  return bytes;
}

Http::RequestId CurlHttp::send(HttpRequest request, Callback callback) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = next_id_++;
  transfer->request = std::move(request);
  transfer->callback = std::move(callback);
  transfer->max_body = options_.max_body_bytes;
  const RequestId id = transfer->id;
  transfers_.emplace(id, std::move(transfer));
  waiting_.push(id, transfers_.at(id)->request.priority);
  start_waiting();
  return id;
}

bool CurlHttp::start(Transfer& transfer) {
  transfer.easy.reset(curl_easy_init());
  CURL* easy = transfer.easy.get();
  if (easy == nullptr) return false;
  HttpRequest& request = transfer.request;
  const Millis timeout = request.timeout.value_or(options_.timeout);

  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(easy, CURLOPT_SHARE, share_.get());
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);  // never switched off
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);  // prefer multiplexing on a connection being set up
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "graph2mqtt");
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error_buffer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlHttp::on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
  if (request.connect_only) {
    // The broker's TLS diagnosis: the MQTT connection never goes through a proxy
    // (docs/mqtt-api.md).
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
  } else if (options_.proxy) {
    curl_easy_setopt(easy, CURLOPT_PROXY, options_.proxy->c_str());
  } else if (const std::string* proxy = environment_proxy(request.url)) {
    curl_easy_setopt(easy, CURLOPT_PROXY, proxy->c_str());  // NO_PROXY still applies
  }
  if (request.connect_only) curl_easy_setopt(easy, CURLOPT_CONNECT_ONLY, 1L);
  if (request.ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, request.ca_file->c_str());
  if (request.client_cert) curl_easy_setopt(easy, CURLOPT_SSLCERT, request.client_cert->c_str());
  if (request.client_key) curl_easy_setopt(easy, CURLOPT_SSLKEY, request.client_key->c_str());
  if (trust_ && !request.ca_file) {
    // The shared store replaces the files libcurl would otherwise load for this connection.
    curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
  }
  if ((trust_ || !extra_ca_pem_.empty()) && !request.ca_file) {
    curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, &CurlHttp::on_ssl_ctx);
    curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, this);
  }

  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  transfer.headers.reset(headers);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (request.method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  return check(curl_multi_add_handle(multi_.get(), easy), "curl_multi_add_handle");
}

void CurlHttp::start_waiting() {
  const std::size_t limit = multiplexed_ ? options_.max_active_multiplexed : options_.max_active;
  while (active_ < limit && !waiting_.empty()) {
    const RequestId id = *waiting_.pop();
    const auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;  // cancelled while waiting
    if (start(*it->second)) {
      ++active_;
    } else {
      it->second->easy.reset();
      failed_.push_back(id);  // answered from poll(): callbacks never run inside send()
    }
  }
}

void CurlHttp::cancel(RequestId id) {
  const auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  if (it->second->active()) {
    check(curl_multi_remove_handle(multi_.get(), it->second->easy.get()),
          "curl_multi_remove_handle");
    --active_;
  }
  transfers_.erase(it);  // a waiting one is skipped when its turn comes
  start_waiting();
}

void CurlHttp::poll(Millis timeout) {
  int running = 0;
  check(curl_multi_perform(multi_.get(), &running), "curl_multi_perform");
  finish_done_transfers();
  const Millis wait = failed_.empty() ? timeout : Millis(0);
  check(curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(wait.count()), nullptr),
        "curl_multi_poll");
  check(curl_multi_perform(multi_.get(), &running), "curl_multi_perform");
  finish_done_transfers();
}

void CurlHttp::wake() {
  // Any thread, so not check() (its bookkeeping is the loop thread's); the logger is
  // thread-safe. A failed wake-up delays the loop until its next timer or I/O.
  if (const CURLMcode code = curl_multi_wakeup(multi_.get()); code != CURLM_OK) {
    log_.error("http: curl_multi_wakeup failed: ", curl_multi_strerror(code));
  }
}

void CurlHttp::finish_done_transfers() {
  while (!failed_.empty()) {
    const RequestId id = failed_.front();
    failed_.pop_front();
    auto node = transfers_.extract(id);
    if (node.empty()) continue;  // cancelled meanwhile
    HttpResponse out;
    out.error = TransportError::network;
    out.error_message = "libcurl could not start the transfer";
    auto callback = std::move(node.mapped()->callback);
    node.mapped().reset();
    if (callback) callback(std::move(out));
  }
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;
    Transfer* owner = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
    const RequestId id = owner != nullptr ? owner->id : 0;
    check(curl_multi_remove_handle(multi_.get(), easy), "curl_multi_remove_handle");
    auto node = transfers_.extract(id);
    if (node.empty()) continue;
    --active_;
    if (result == CURLE_OK) {
      long version = CURL_HTTP_VERSION_NONE;
      curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
      multiplexed_ = version == CURL_HTTP_VERSION_2_0 || version == CURL_HTTP_VERSION_3;
    }
    start_waiting();
    Transfer& transfer = *node.mapped();
    HttpResponse& response = transfer.response;
    if (result == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      response.content_type = optional_header(easy, "Content-Type");
      if (auto retry = optional_header(easy, "Retry-After"); !retry.empty()) {
        response.retry_after = retry;
      }
    } else {
      response.status = 0;
      response.error = response.truncated ? TransportError::network : classify(result);
      response.error_message =
          transfer.error_buffer[0] != '\0' ? transfer.error_buffer : curl_easy_strerror(result);
      // curl says "Couldn't connect to server" for every kind of connect failure: add the
      // system's reason (connection refused, no route to host, ...) so the operator knows which.
      long os_errno = 0;
      if (result == CURLE_COULDNT_CONNECT &&
          curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0) {
        const std::string reason = std::strerror(static_cast<int>(os_errno));
        if (response.error_message.find(reason) == std::string::npos) {
          response.error_message += " (" + reason + ")";
        }
      }
      if (response.truncated) response.error_message = "response body too large";
      response.body.clear();
    }
    if (log_.enabled(LogLevel::debug)) {
      log_.debug("http: ", transfer.request.method, " ", transfer.request.url, " -> ",
                 response.ok() ? std::to_string(response.status) : response.error_message);
    }
    auto callback = std::move(transfer.callback);
    HttpResponse out = std::move(response);
    node.mapped().reset();  // release the handle before the callback may send more
    if (callback) callback(std::move(out));
  }
}

std::string url_escape(const std::string& text) {
  char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  if (escaped == nullptr) return {};
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

std::vector<std::pair<std::string, std::string>> form_decode(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  auto unescape = [](std::string part) {
    for (auto& c : part) {
      if (c == '+') c = ' ';
    }
    int length = 0;
    char* raw = curl_easy_unescape(nullptr, part.c_str(), static_cast<int>(part.size()), &length);
    if (raw == nullptr) return std::string();
    std::string value(raw, static_cast<size_t>(length));
    curl_free(raw);
    return value;
  };
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('&', start), text.size());
    const std::string pair = text.substr(start, end - start);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      out.emplace_back(unescape(pair.substr(0, eq)),
                       eq == std::string::npos ? std::string() : unescape(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += url_escape(name);
    out += '=';
    out += url_escape(value);
  }
  return out;
}

}  // namespace g2m
