#include "harness_simulator.h"

#include <curl/curl.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace g2m::test {

namespace {

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlDeleter>;

size_t append_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct CallOptions {
  const std::string* post_body = nullptr;
  const char* content_type = "Content-Type: application/json";
  std::string ca_file{};
};

HttpReply http_call(const std::string& url, const CallOptions& options) {
  HttpReply reply;
  CurlHandle curl(curl_easy_init());
  if (!curl) {
    reply.error = "curl_easy_init failed";
    return reply;
  }
  char error[CURL_ERROR_SIZE] = {};
  CurlList headers(curl_slist_append(nullptr, options.content_type));
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROXY, "");
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  if (!options.ca_file.empty())
    curl_easy_setopt(curl.get(), CURLOPT_CAINFO, options.ca_file.c_str());
  if (options.post_body != nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, options.post_body->c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(options.post_body->size()));
  }
  const CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) {
    reply.error = std::string(curl_easy_strerror(code)) + (error[0] != 0 ? ": " : "") + error;
    return reply;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  char* location = nullptr;
  if (curl_easy_getinfo(curl.get(), CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
      location != nullptr) {
    reply.location = location;
  }
  return reply;
}

long counter(const rapidjson::Value& object, std::initializer_list<const char*> path) {
  const rapidjson::Value* v = &object;
  for (const char* key : path) {
    if (!v->IsObject()) return -1;
    auto member = v->FindMember(key);
    if (member == v->MemberEnd()) return -1;
    v = &member->value;
  }
  return v->IsInt64() ? static_cast<long>(v->GetInt64()) : -1;
}

std::string json_object(std::initializer_list<std::pair<const char*, std::string>> fields) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [key, value] : fields) {
    writer.Key(key);
    writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  writer.EndObject();
  return buffer.GetString();
}

}  // namespace

bool simulator_available() {
  return std::filesystem::exists(G2M_SIMULATOR_BIN);
}

HttpReply http_get(const std::string& url) {
  return http_call(url, {});
}
HttpReply http_post(const std::string& url, const std::string& json_body) {
  return http_call(url, {.post_body = &json_body});
}
HttpReply http_post_form(const std::string& url, const std::string& form,
                         const std::string& ca_file) {
  return http_call(url, {.post_body = &form,
                         .content_type = "Content-Type: application/x-www-form-urlencoded",
                         .ca_file = ca_file});
}
HttpReply http_get_verified(const std::string& url, const std::string& ca_file) {
  return http_call(url, {.ca_file = ca_file});
}

Simulator::Simulator(const Pki& pki, std::vector<std::string> extra_args) : ca_(pki.ca.string()) {
  if (!simulator_available()) {
    g2m::test::fail(std::string("the simulator is not built: ") + G2M_SIMULATOR_BIN);
  }
  const auto port_file = dir_ / "ports.json";
  std::vector<std::string> argv{
      G2M_SIMULATOR_BIN, "--port-file", port_file.string(), "--cert", pki.server_cert.string(),
      "--key", pki.server_key.string(),
      // A test opens a few connections; the default 4,096 workers per listener (for the
      // benchmarks) start 8,192 threads per simulator, too many for parallel tests on a shared
      // machine. A later --threads in extra_args wins.
      "--threads", "64"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(argv, dir_ / "simulator.log");
  const bool ready = poll_until(
      [&] {
        if (!process_->running()) return true;
        const auto ports = try_parse_json(read_file(port_file));
        if (ports.HasParseError() || !ports.IsObject()) return false;
        https_port_ = static_cast<int>(counter(ports, {"https"}));
        http_port_ = static_cast<int>(counter(ports, {"http"}));
        return https_port_ > 0 && http_port_ > 0;
      },
      10s);
  if (!ready || !process_->running()) {
    g2m::test::fail("the simulator did not start (" + process_->command_line() + "); port file: '" +
                    read_file(port_file) + "'; log:\n" + log_text());
  }
}

Simulator::~Simulator() = default;  // the Process kills it

std::string Simulator::https_url() const {
  return "https://127.0.0.1:" + std::to_string(https_port_);
}
std::string Simulator::http_url() const {
  return "http://127.0.0.1:" + std::to_string(http_port_);
}

HttpReply Simulator::post(const std::string& path, const std::string& json) {
  return http_post(http_url() + path, json);
}
HttpReply Simulator::get(const std::string& path) {
  return http_get(http_url() + path);
}

void Simulator::control(const std::string& path, const std::string& json) {
  const HttpReply reply = post(path, json);
  if (reply.status < 200 || reply.status > 299) {
    g2m::test::fail("simulator POST " + path + " " + json + " -> " + std::to_string(reply.status) +
                    " " + reply.body + reply.error);
  }
}

void Simulator::approve(const std::string& user_code, const std::string& name,
                        const std::string& username) {
  control("/_sim/approve",
          json_object({{"user_code", user_code}, {"name", name}, {"username", username}}));
}

void Simulator::decline(const std::string& user_code) {
  control("/_sim/decline", json_object({{"user_code", user_code}}));
}

void Simulator::config(const std::string& json) {
  control("/_sim/config", json);
}
void Simulator::fail(const std::string& json) {
  control("/_sim/fail", json);
}
void Simulator::expire_tokens() {
  control("/_sim/expire_tokens", "{}");
}

SimulatorCounters Simulator::counters() {
  const HttpReply reply = get("/_sim/counters");
  if (reply.status != 200) {
    g2m::test::fail("simulator GET /_sim/counters -> " + std::to_string(reply.status) + " " +
                    reply.body + reply.error);
  }
  const auto json = parse_json(reply.body);
  return SimulatorCounters{
      .devicecode = counter(json, {"requests", "devicecode"}),
      .token = counter(json, {"requests", "token"}),
      .refresh = counter(json, {"requests", "refresh"}),
      .graph = counter(json, {"requests", "graph"}),
      .interval_violations = counter(json, {"interval_violations"}),
      .slow_down_sent = counter(json, {"slow_down_sent"}),
      .rotated_token_reuse = counter(json, {"rotated_token_reuse"}),
      .tcp_connections = counter(json, {"tcp_connections"}),
      .tls_handshakes = counter(json, {"tls_handshakes"}),
      .authorize = counter(json, {"requests", "authorize"}),
      .authorization_codes_issued = counter(json, {"authorization_codes_issued"}),
      .authorization_code_redemptions = counter(json, {"authorization_code_redemptions"}),
      .code_reuse = counter(json, {"code_reuse"}),
      .pkce_failures = counter(json, {"pkce_failures"}),
      .redirect_uri_mismatches = counter(json, {"redirect_uri_mismatches"}),
      .authorize_without_pkce = counter(json, {"authorize_without_pkce"}),
      .policy_refusals = counter(json, {"policy_refusals"}),
      .json = reply.body,
  };
}

BrowserOutcome Simulator::browser_authorize(const std::string& sign_in_url,
                                            const std::string& action) {
  const auto body = json_object({{"url", sign_in_url}, {"action", action}});
  const HttpReply reply = post("/_sim/authorize", body);
  if (reply.status != 200) {
    g2m::test::fail("simulator POST /_sim/authorize " + body + " -> " +
                    std::to_string(reply.status) + " " + reply.body + reply.error);
  }
  const auto json = parse_json(reply.body);
  BrowserOutcome outcome;
  outcome.status = counter(json, {"status"});
  outcome.location = json_str(json, "location");
  outcome.error = json_str(json, "error");
  outcome.error_description = json_str(json, "error_description");
  const auto codes = json.FindMember("error_codes");
  if (codes != json.MemberEnd() && codes->value.IsArray()) {
    for (const auto& code : codes->value.GetArray()) {
      if (code.IsInt64()) outcome.error_codes.push_back(static_cast<long>(code.GetInt64()));
    }
  }
  outcome.json = reply.body;
  return outcome;
}

std::string Simulator::browser_sign_in(const std::string& sign_in_url, const std::string& name,
                                       const std::string& username) {
  const auto body = json_object(
      {{"url", sign_in_url}, {"action", "approve"}, {"name", name}, {"username", username}});
  const HttpReply reply = post("/_sim/authorize", body);
  const auto json = try_parse_json(reply.body);
  const bool redirected = reply.status == 200 && !json.HasParseError() && json.IsObject() &&
                          counter(json, {"status"}) == 302 && json_str(json, "error").empty() &&
                          !json_str(json, "location").empty();
  if (!redirected) {
    g2m::test::fail("the simulated browser sign-in at " + sign_in_url +
                    " was not redirected with a code: " + std::to_string(reply.status) + " " +
                    reply.body + reply.error);
  }
  return json_str(json, "location");
}

std::string Simulator::browser_decline(const std::string& sign_in_url) {
  const BrowserOutcome outcome = browser_authorize(sign_in_url, "decline");
  if (outcome.status != 302 || outcome.error != "access_denied") {
    g2m::test::fail("the simulated browser decline at " + sign_in_url +
                    " was not redirected with access_denied: " + outcome.json);
  }
  return outcome.location;
}

HttpReply Simulator::browser_get(const std::string& sign_in_url) {
  return http_get_verified(sign_in_url, ca_);
}

void Simulator::expire_authorization_codes() {
  control("/_sim/expire_authorization_codes", "{}");
}

void Simulator::set_tenant_policy(const TenantPolicy& policy) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("tenant");
  writer.String(policy.tenant.c_str());
  writer.Key("device_code");
  writer.String(policy.device_code.c_str());
  writer.Key("device_code_error_code");
  writer.Int64(policy.device_code_error_code);
  writer.Key("refresh");
  writer.String(policy.refuse_device_code_refresh ? "refuse" : "allow");
  writer.Key("refresh_error_code");
  writer.Int64(policy.refresh_error_code);
  writer.Key("error");
  writer.String(policy.error.c_str());
  if (!policy.description.empty()) {
    writer.Key("description");
    writer.String(policy.description.c_str(),
                  static_cast<rapidjson::SizeType>(policy.description.size()));
  }
  writer.EndObject();
  control("/_sim/policy", buffer.GetString());
}

void Simulator::clear_tenant_policies() {
  control("/_sim/policy/clear", "{}");
}

std::string Simulator::refresh_token_origin(const std::string& refresh_token) {
  const HttpReply reply = get("/_sim/refresh_tokens");
  if (reply.status != 200) {
    g2m::test::fail("simulator GET /_sim/refresh_tokens -> " + std::to_string(reply.status) + " " +
                    reply.body + reply.error);
  }
  const auto json = parse_json(reply.body);
  const auto tokens = json.FindMember("refresh_tokens");
  if (tokens == json.MemberEnd() || !tokens->value.IsArray()) return "";
  for (const auto& token : tokens->value.GetArray()) {
    if (json_str(token, "refresh_token") == refresh_token) return json_str(token, "origin");
  }
  return "";
}

HttpReply Simulator::https_get(const std::string& path_and_query) {
  return http_get_verified(https_url() + path_and_query, ca_);
}

HttpReply Simulator::https_post_form(const std::string& path, const std::string& form) {
  return http_post_form(https_url() + path, form, ca_);
}

void Simulator::stop() {
  process_->terminate(SIGTERM);
  if (!process_->wait_exit(5s)) process_->kill9();
}

}  // namespace g2m::test
