#include "simulator.h"

#include <openssl/ssl.h>

#include <sys/socket.h>

#include <cctype>
#include <memory>
#include <thread>

#include "util.h"

namespace g2m::sim {
namespace {

int ctx_index() {
  static const int index =
      CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ssl_index() {
  static const int index =
      CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void tls_info_callback(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_DONE) == 0) return;
  // TLS 1.3 can signal HANDSHAKE_DONE again after post-handshake messages (session tickets),
  // so each connection is counted once.
  auto* mutable_ssl = const_cast<SSL*>(ssl);
  if (SSL_get_ex_data(mutable_ssl, ssl_index()) != nullptr) return;
  static int marker = 1;
  SSL_set_ex_data(mutable_ssl, ssl_index(), &marker);
  auto* sim = static_cast<Simulator*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index()));
  if (sim != nullptr) sim->on_tls_handshake_done();
}

// Answers 200 with headers that promise a whole JSON body, sends half of it, then resets the
// connection (RST): a peer or middlebox that drops the connection mid-response.
void reset_mid_response(const httplib::Request& req, httplib::Response& res) {
  // httplib does not hand the socket to handlers: find it by its two ports.
  const int fd = find_socket(req.local_port, req.remote_port);
  auto body = std::make_shared<std::string>(R"({"token_type":"Bearer","padding":")" +
                                            std::string(2000, 'x') + R"("})");
  res.status = 200;
  res.set_content_provider(
      body->size(), "application/json; charset=utf-8",
      [body, fd](std::size_t /*offset*/, std::size_t /*length*/, httplib::DataSink& sink) {
        sink.write(body->data(), body->size() / 2);
        // connect(AF_UNSPEC) on a TCP socket aborts the connection with a RST and leaves the
        // descriptor to httplib, which then fails its next write and closes it as usual.
        sockaddr unspecified{};
        unspecified.sa_family = AF_UNSPEC;
        if (fd >= 0) ::connect(fd, &unspecified, sizeof unspecified);
        return false;
      });
}

}  // namespace

Simulator::Simulator(const Options& options, int http_port) : http_port_(http_port) {
  config_.interval = options.interval;
  config_.expires_in = options.expires_in;
  config_.token_lifetime = options.token_lifetime;
  config_.strict_rotation = options.strict_rotation;
  config_.auto_approve_after = options.auto_approve_after;
  config_.page_size = options.page_size;
  config_.events = options.events;
  config_.verification_uri = options.verification_uri == "self"
                                 ? "http://127.0.0.1:" + std::to_string(http_port_) + "/devicelogin"
                                 : options.verification_uri;
}

void Simulator::install(httplib::Server& server, bool https) {
  server.set_pre_routing_handler([this](const Request& req, Response&) {
    // Each TCP connection has its own client port, so distinct pairs count connections.
    std::lock_guard lock(mutex_);
    counters_.connections.emplace(req.remote_addr, req.remote_port);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.Post(R"(/([^/]+)/oauth2/v2\.0/devicecode)",
              [this, https](const Request& req, Response& res) {
                handle_devicecode(req, res, false, https);
              });
  server.Post(R"(/([^/]+)/oauth2/devicecode)", [this, https](const Request& req, Response& res) {
    handle_devicecode(req, res, true, https);
  });
  server.Post(R"(/([^/]+)/oauth2/v2\.0/token)", [this, https](const Request& req, Response& res) {
    handle_token(req, res, false, https);
  });
  server.Post(R"(/([^/]+)/oauth2/token)", [this, https](const Request& req, Response& res) {
    handle_token(req, res, true, https);
  });
  server.Get(R"(/([^/]+)/v2\.0/\.well-known/openid-configuration)",
             [this, https](const Request& req, Response& res) {
               handle_openid_configuration(req, res, https);
             });
  server.Get(
      R"(/([^/]+)/oauth2/v2\.0/authorize)",
      [this, https](const Request& req, Response& res) { handle_authorize(req, res, https); });
  server.Get(R"(/common/oauth2/nativeclient)", [](const Request&, Response& res) {
    // Where a person's browser lands after the simulated sign-in with the simulator's own
    // nativeclient redirect URI: the address, not this page, is what they paste back.
    res.status = 200;
    res.set_header("Cache-Control", "no-store, no-cache");
    res.set_content(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Signed in</title></head>"
        "<body><h1>Signed in</h1><p>Copy the whole address of this page from the address bar "
        "and paste it into the device that asked you to sign in.</p></body></html>\n",
        "text/html; charset=utf-8");
  });
  server.Get("/devicelogin",
             [this](const Request& req, Response& res) { handle_devicelogin_page(req, res); });
  server.Post("/devicelogin",
              [this](const Request& req, Response& res) { handle_devicelogin_submit(req, res); });
  server.Get(R"(/v1\.0(/.*)?)",
             [this, https](const Request& req, Response& res) { handle_graph(req, res, https); });
  server.Get(R"(/_sim/.*)",
             [this](const Request& req, Response& res) { handle_control(req, res); });
  server.Post(R"(/_sim/.*)",
              [this](const Request& req, Response& res) { handle_control(req, res); });
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req,
                                                                   Response& res) {
    // httplib calls this for every status >= 400; only unrouted requests have no body yet.
    if (res.status != 404 || !res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (req.path.rfind("/v1.0/", 0) == 0) {
      send_graph_error(req, res, 404, "ResourceNotFound", "Resource not found.");
    } else {
      send_json(res, 404, Json().begin_object().field("error", "not_found").end_object().text());
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
}

void Simulator::attach_tls(httplib::SSLServer& server) {
  SSL_CTX* ctx = server.ssl_context();
  SSL_CTX_set_ex_data(ctx, ctx_index(), this);
  SSL_CTX_set_info_callback(ctx, tls_info_callback);
}

void Simulator::on_tls_handshake_done() {
  std::lock_guard lock(mutex_);
  ++counters_.tls_handshakes;
}

std::optional<Failure> Simulator::take_failure_locked(Endpoint endpoint, const std::string& path) {
  static constexpr const char* kNames[] = {"devicecode", "token", "refresh", "graph"};
  const std::string name = kNames[static_cast<int>(endpoint)];
  for (auto it = failures_.begin(); it != failures_.end(); ++it) {
    const bool match =
        it->endpoint == name || (endpoint == Endpoint::graph && !it->endpoint.empty() &&
                                 it->endpoint[0] == '/' && path.rfind(it->endpoint, 0) == 0);
    if (!match) continue;
    Failure taken = *it;
    if (--it->count <= 0) failures_.erase(it);
    return taken;
  }
  return std::nullopt;
}

bool Simulator::apply_failure(const Failure& failure, const Request& req, Response& res,
                              bool graph) {
  if (failure.delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(failure.delay_ms));
  }
  if (!failure.answers()) return false;
  if (failure.reset) {
    reset_mid_response(req, res);
    return true;
  }
  const int status = failure.status.value_or(graph ? 500 : 400);
  std::string body;
  std::string type = "application/json; charset=utf-8";
  if (failure.body) {
    body = *failure.body;
    type = "text/plain; charset=utf-8";
  } else if (failure.error) {
    const auto text = failure.description.value_or("Injected failure.");
    body = graph ? graph_error_body(req, res, *failure.error, text)
                 : oauth_error_body(req, *failure.error, failure.error_codes, text);
  }
  if (failure.content_type) type = *failure.content_type;
  if (failure.retry_after) res.set_header("Retry-After", *failure.retry_after);
  res.set_header("Cache-Control", "no-store, no-cache");
  res.status = status;
  res.set_content(body, type.c_str());
  return true;
}

std::string base_url(const httplib::Request& req, bool https) {
  auto host = req.get_header_value("Host");
  if (host.empty()) host = req.local_addr + ":" + std::to_string(req.local_port);
  return (https ? "https://" : "http://") + host;
}

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store, no-cache");
  res.set_header("Pragma", "no-cache");
  res.set_content(body, "application/json; charset=utf-8");
}

AadstsText aadsts_text(const httplib::Request* req, std::int64_t code, const std::string& text) {
  AadstsText out;
  out.trace_id = random_guid();
  // Microsoft uses the caller's client-request-id as the correlation id when it is a GUID.
  if (req != nullptr) out.correlation_id = req->get_header_value("client-request-id");
  if (!is_guid(out.correlation_id)) out.correlation_id = random_guid();
  out.timestamp = ms_timestamp();
  if (code != 0 && text.rfind("AADSTS", 0) != 0) {
    out.description = "AADSTS" + std::to_string(code) + ": ";
  }
  out.description += text + "\r\nTrace ID: " + out.trace_id +
                     "\r\nCorrelation ID: " + out.correlation_id +
                     "\r\nTimestamp: " + out.timestamp;
  return out;
}

std::string oauth_error_body(const httplib::Request& req, const std::string& error,
                             const std::vector<std::int64_t>& codes, const std::string& text) {
  const auto aadsts = aadsts_text(&req, codes.empty() ? 0 : codes.front(), text);
  Json json;
  json.begin_object().field("error", error).field("error_description", aadsts.description);
  json.key("error_codes").begin_array();
  for (const auto code : codes) json.num(code);
  json.end_array();
  json.field("timestamp", aadsts.timestamp)
      .field("trace_id", aadsts.trace_id)
      .field("correlation_id", aadsts.correlation_id);
  if (!codes.empty()) {
    json.field("error_uri",
               "https://login.microsoftonline.com/error?code=" + std::to_string(codes.front()));
  }
  return json.end_object().text();
}

void send_oauth_error(const httplib::Request& req, httplib::Response& res, int status,
                      const std::string& error, std::int64_t code, const std::string& text) {
  send_json(res, status, oauth_error_body(req, error, {code}, text));
}

std::string graph_error_body(const httplib::Request& req, const httplib::Response& res,
                             const std::string& code, const std::string& message) {
  auto request_id = res.get_header_value("request-id");
  if (request_id.empty()) request_id = random_guid();
  auto client_request_id = req.get_header_value("client-request-id");
  if (client_request_id.empty()) client_request_id = request_id;
  Json json;
  json.begin_object().key("error").begin_object();
  json.field("code", code).field("message", message);
  json.key("innerError")
      .begin_object()
      .field("date", graph_date())
      .field("request-id", request_id)
      .field("client-request-id", client_request_id)
      .end_object();
  return json.end_object().end_object().text();
}

void send_graph_error(const httplib::Request& req, httplib::Response& res, int status,
                      const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(graph_error_body(req, res, code, message), "application/json");
}

std::string normalize_user_code(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == ' ' || c == '-' || c == '\t') continue;
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool valid_tenant(const std::string& tenant) {
  const auto lower = to_lower(tenant);
  if (lower == "common" || lower == "organizations" || lower == "consumers") return true;
  if (is_guid(tenant)) return true;
  // A "friendly" tenant is a DNS name (contoso.onmicrosoft.com); anything else is AADSTS900023.
  if (tenant.size() > 253 || tenant.find('.') == std::string::npos) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < tenant.size(); ++i) {
    const char c = tenant[i];
    if (c == '.') {
      if (label == 0 || tenant[i - 1] == '-') return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0)) {
      ++label;
    } else {
      return false;
    }
  }
  return label > 0 && tenant.back() != '-';
}

}  // namespace g2m::sim

namespace g2m::sim {

std::map<std::string, std::string> form_of(const httplib::Request& req) {
  // Microsoft reads parameters from the form body only, never from the query string.
  if (req.get_header_value("Content-Type").find("application/x-www-form-urlencoded") ==
      std::string::npos) {
    return {};
  }
  return parse_form(req.body);
}

std::string form_value(const std::map<std::string, std::string>& form, const std::string& name) {
  const auto it = form.find(name);
  return it == form.end() ? std::string{} : it->second;
}

}  // namespace g2m::sim
