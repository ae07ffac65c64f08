// The simulated Microsoft identity platform and Microsoft Graph: shared state and route handlers.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "options.h"

namespace g2m::sim {

using Clock = std::chrono::steady_clock;

struct User {
  std::string name = "Adele Vance";
  std::string username = "adele@contoso.com";
};

struct Presence {
  std::string availability = "Available";
  std::string activity = "Available";
};

// Knobs that /_sim/config changes at run time; a new value applies to codes and tokens issued
// later.
struct Config {
  int interval = 5;
  int expires_in = 900;
  int token_lifetime = 3600;
  bool omit_interval = false;
  bool string_numbers = false;
  bool errors_on_200 = false;
  bool strict_rotation = false;
  bool omit_id_token = false;  // no id_token even for openid (the agent must ask Graph's /me)
  std::optional<double> auto_approve_after;
  Presence presence;
  std::map<std::string, Presence> user_presence;  // by username
  std::string verification_uri;
  int page_size = 10;
  int events = 3;
  // Browser sign-in (authorization code with PKCE).
  int authorization_code_lifetime = 600;   // Entra: "they expire after about 10 minutes"
  bool decline_browser_sign_in = false;    // a plain GET of /authorize declines instead
  std::vector<std::string> redirect_uris;  // registered on top of nativeclient and loopback
};

// `refused`: the user approved, then the tenant's policy refused the poll.
enum class CodeState { pending, approved, declined, redeemed, refused };

struct DeviceCode {
  std::string device_code;
  std::string user_code;
  std::string client_id;
  std::string scope;
  std::string tenant;
  std::string resource;  // v1 only
  bool v1 = false;
  Clock::time_point issued;
  Clock::time_point expires_at;
  // The instant the next poll is measured from: the device-code answer, then each poll.
  Clock::time_point poll_reference;
  std::int64_t issued_at_ms = 0;
  std::optional<std::int64_t> approved_at_ms;
  std::optional<double> auto_approve_after;
  int interval = 5;
  int polls = 0;
  // Each poll's arrival minus the earliest moment the interval allowed it (poll_reference +
  // interval), in ms: negative for an early poll. For the bench's poll lateness.
  std::vector<double> poll_lateness_ms;
  CodeState state = CodeState::pending;
  bool decline_reported = false;
  User user;
};

// What a set of tokens was granted for; a refresh token family shares one.
struct Grant {
  User user;
  std::string client_id;
  std::string scope;  // as requested, may include offline_access
  std::string tenant;
  std::string resource;
  bool v1 = false;
  std::uint64_t family = 0;
  // How the family began: "device_code" or "authorization_code" (the browser sign-in). Tenant
  // policy refuses the refresh tokens of device-code families only.
  std::string origin = "device_code";
};

struct AccessToken {
  User user;
  Clock::time_point expires_at;
};

struct RefreshToken {
  Grant grant;
  bool rotated = false;  // a newer token replaced it (Microsoft keeps it valid)
  bool revoked = false;
  std::uint64_t sequence = 0;  // issue order
};

// An authorization code of the browser sign-in (RFC 6749 §4.1, PKCE RFC 7636).
struct AuthorizationCode {
  std::string code;
  std::string client_id;
  std::string redirect_uri;
  std::string scope;
  std::string tenant;
  std::string code_challenge;         // empty: the request used no PKCE
  std::string code_challenge_method;  // S256 or plain
  Clock::time_point expires_at;
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  bool redeemed = false;
  int redemption_attempts = 0;
  // The code_verifier of the last redemption: what tests look for in the agent's logs and
  // payloads (a secret the agent must never show).
  std::string verifier_seen;
  User user;
};

// What a tenant's policy refuses (security defaults, Conditional Access "authentication flows").
struct TenantPolicy {
  // allow; refuse_at_request: /devicecode and any poll after approval are refused;
  // refuse_at_poll: /devicecode answers, the first poll after the user approved is refused.
  std::string device_code = "allow";
  std::int64_t device_code_error_code = 530035;
  // Refresh tokens whose family began with a device code are refused.
  bool refuse_device_code_refresh = false;
  std::int64_t refresh_error_code = 530036;
  std::string error = "invalid_grant";     // the OAuth error string of every refusal
  std::optional<std::string> description;  // replaces Microsoft's text
};

// One /authorize request, answered by GET /authorize and by POST /_sim/authorize.
struct AuthorizeOutcome {
  int status = 302;      // 302 (redirect), 200 (form_post page) or 400 (error page)
  std::string location;  // the redirect address (302 and form_post)
  std::string error;     // OAuth error, also on error pages; empty on success
  std::int64_t error_code = 0;
  std::string description;  // the error_description sent
  std::string html;         // the page (error page or form_post)
};

enum class Endpoint { devicecode, token, refresh, graph };

struct Failure {
  std::string endpoint;  // devicecode | token | refresh | graph | a Graph path prefix
  int count = 1;
  std::optional<int> status;
  std::optional<std::string> retry_after;
  int delay_ms = 0;
  std::optional<std::string> body;
  std::optional<std::string> error;
  std::vector<std::int64_t> error_codes;
  std::optional<std::string> description;
  std::optional<std::string> content_type;
  bool reset = false;  // headers and half a body, then a TCP reset

  // A failure with only delay_ms delays a normal answer instead of replacing it.
  bool answers() const { return status || error || body || reset; }
};

enum class Decision { done, not_found, expired, not_pending };

struct Counters {
  std::int64_t devicecode = 0;
  std::int64_t token = 0;
  std::int64_t refresh = 0;
  std::int64_t graph = 0;
  std::int64_t openid_configuration = 0;
  std::map<std::string, std::int64_t> graph_paths;
  std::map<std::string, std::int64_t> polls;  // by user code
  std::int64_t interval_violations = 0;
  std::int64_t slow_down_sent = 0;
  std::int64_t rotated_token_reuse = 0;
  std::int64_t tls_handshakes = 0;
  std::int64_t unauthorized_graph = 0;
  // Browser sign-in and tenant policy.
  std::int64_t authorize = 0;  // requests to /authorize (GET and /_sim/authorize)
  std::int64_t authorization_codes_issued = 0;
  std::int64_t authorization_code_redemptions = 0;  // successful ones
  std::int64_t code_reuse = 0;                      // a redeemed code presented again
  std::int64_t pkce_failures = 0;                   // verifier missing or wrong
  std::int64_t redirect_uri_mismatches = 0;         // unregistered, or not the /authorize one
  std::int64_t authorize_without_pkce = 0;          // accepted, as Entra does for native apps
  std::int64_t policy_refusals = 0;
  std::set<std::pair<std::string, int>> connections;
};

class Simulator {
 public:
  Simulator(const Options& options, int http_port);

  // Registers every route on a listener; both listeners share this one state.
  void install(httplib::Server& server, bool https);
  // Counts completed TLS handshakes of this listener (the tls_handshakes counter).
  void attach_tls(httplib::SSLServer& server);
  void on_tls_handshake_done();

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;

  // identity.cpp
  void handle_devicecode(const Request& req, Response& res, bool v1, bool https);
  void handle_token(const Request& req, Response& res, bool v1, bool https);
  void handle_openid_configuration(const Request& req, Response& res, bool https);
  void handle_devicelogin_page(const Request& req, Response& res);
  // browser.cpp
  void handle_authorize(const Request& req, Response& res, bool https);
  // decision: approve or decline; nullopt follows config (decline_browser_sign_in).
  AuthorizeOutcome authorize_locked(const std::string& tenant,
                                    const std::map<std::string, std::string>& params,
                                    const std::string& own_base, std::optional<bool> approve,
                                    std::optional<User> user);
  void redeem_authorization_code(const Request& req, Response& res,
                                 const std::map<std::string, std::string>& form, bool https);
  const TenantPolicy* policy_locked(const std::string& tenant) const;
  std::string policies_json_locked() const;
  std::string authorization_codes_json_locked(Clock::time_point now) const;
  std::string refresh_tokens_json_locked() const;
  // The refusal of a policy: the configured OAuth error and Microsoft's text for the code.
  void send_policy_refusal(const Request& req, Response& res, int status,
                           const TenantPolicy& policy, std::int64_t code);
  void handle_devicelogin_submit(const Request& req, Response& res);
  void poll_device_code(const Request& req, Response& res,
                        const std::map<std::string, std::string>& form, bool v1, bool https,
                        Clock::time_point arrival);
  void redeem_refresh_token(const Request& req, Response& res,
                            const std::map<std::string, std::string>& form, bool v1, bool https);
  std::string issue_tokens_locked(const Grant& grant, const std::string& scope, bool v1,
                                  const std::string& issuer_base, bool client_info);
  bool note_poll_locked(DeviceCode& code, Clock::time_point now);
  void update_code_locked(DeviceCode& code, Clock::time_point now);
  DeviceCode* find_user_code_locked(const std::string& user_code);
  // The simulated browser step, shared by /devicelogin and /_sim/approve|decline.
  Decision decide_locked(const std::string& user_code, bool approve, const User& user,
                         Clock::time_point now);

  // graph.cpp
  void handle_graph(const Request& req, Response& res, bool https);
  void graph_me(const Request& req, Response& res, const User& user);
  void graph_presence(Response& res, const User& user);
  void graph_calendar_view(const Request& req, Response& res, const User& user, bool https);

  // control.cpp
  void handle_control(const Request& req, Response& res);
  std::string config_json_locked() const;
  std::string counters_json_locked() const;
  std::string codes_json_locked(Clock::time_point now);
  std::string issued_json_locked() const;

  // simulator.cpp
  std::optional<Failure> take_failure_locked(Endpoint endpoint, const std::string& path);
  // Sleeps for delay_ms and writes the injected answer; false means "answer normally".
  bool apply_failure(const Failure& failure, const Request& req, Response& res, bool graph);

  const int http_port_;
  std::mutex mutex_;
  Config config_;
  std::map<std::string, DeviceCode> codes_;           // by device code
  std::vector<std::string> code_order_;               // device codes in issue order
  std::map<std::string, std::string> user_codes_;     // user code -> device code
  std::map<std::string, AccessToken> access_tokens_;  // by token
  std::map<std::string, RefreshToken> refresh_tokens_;
  std::vector<std::string> issued_id_tokens_;  // for secret audits (/_sim/issued)
  std::map<std::string, AuthorizationCode> authorization_codes_;  // by code
  std::vector<std::string> authorization_code_order_;
  std::map<std::string, TenantPolicy> policies_;  // by lower-case tenant, "*" for every tenant
  std::uint64_t next_refresh_sequence_ = 1;
  std::uint64_t next_family_ = 1;
  std::vector<Failure> failures_;
  Counters counters_;
};

// Shared answer builders (simulator.cpp).
std::string base_url(const httplib::Request& req, bool https);
void send_json(httplib::Response& res, int status, const std::string& body);
// Microsoft identity platform error body (reference-error-codes: error, error_description with
// Trace/Correlation ID and Timestamp, error_codes, timestamp, trace_id, correlation_id, error_uri).
void send_oauth_error(const httplib::Request& req, httplib::Response& res, int status,
                      const std::string& error, std::int64_t code, const std::string& text);
std::string oauth_error_body(const httplib::Request& req, const std::string& error,
                             const std::vector<std::int64_t>& codes, const std::string& text);
// Microsoft Graph error body: {"error":{"code","message","innerError":{...}}}.
void send_graph_error(const httplib::Request& req, httplib::Response& res, int status,
                      const std::string& code, const std::string& message);
std::string graph_error_body(const httplib::Request& req, const httplib::Response& res,
                             const std::string& code, const std::string& message);
std::map<std::string, std::string> form_of(const httplib::Request& req);
std::string form_value(const std::map<std::string, std::string>& form, const std::string& name);
// The stable Graph/Entra object id of a simulated user.
std::string user_oid(const User& user);
std::string normalize_user_code(const std::string& text);
bool valid_tenant(const std::string& tenant);
// Microsoft's error_description: "AADSTSn: text\r\nTrace ID: ..\r\nCorrelation ID: ..\r\n
// Timestamp: .."; trace_id/correlation_id/timestamp are returned for the other fields.
struct AadstsText {
  std::string description;
  std::string trace_id;
  std::string correlation_id;
  std::string timestamp;
};
AadstsText aadsts_text(const httplib::Request* req, std::int64_t code, const std::string& text);
// Microsoft's wording for the codes tenant policy sends (530035, 53003, 530036, ...).
std::string policy_text(std::int64_t code);

}  // namespace g2m::sim
