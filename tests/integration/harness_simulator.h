// The simulated Microsoft identity platform and Graph (G2M_SIMULATOR_BIN), and plain HTTP calls
// to its control API.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness_process.h"
#include "harness_util.h"

namespace g2m::test {

bool simulator_available();  // G2M_SIMULATOR_BIN exists (for doctest::skip)

// status 0: no HTTP answer at all (`error` says why).
struct HttpReply {
  long status = 0;
  std::string body{};
  std::string error{};
  std::string location{};  // the Location header of a redirect (redirects are never followed)
};
// Blocking libcurl calls, no proxy, 10 s timeout.
HttpReply http_get(const std::string& url);
HttpReply http_post(const std::string& url, const std::string& json_body);
// POST application/x-www-form-urlencoded (`form` already encoded), as the identity endpoints
// want. `ca_file`, when not empty, is the CA that verifies an https:// URL.
HttpReply http_post_form(const std::string& url, const std::string& form,
                         const std::string& ca_file = "");
HttpReply http_get_verified(const std::string& url, const std::string& ca_file);

// GET /_sim/counters; a field the simulator did not send is -1.
struct SimulatorCounters {
  long devicecode = -1;  // requests.devicecode
  long token = -1;       // requests.token
  long refresh = -1;     // requests.refresh
  long graph = -1;       // requests.graph
  long interval_violations = -1;
  long slow_down_sent = -1;
  long rotated_token_reuse = -1;
  long tcp_connections = -1;
  long tls_handshakes = -1;
  // The browser sign-in and tenant policy (docs/simulator.md, "Counters").
  long authorize = -1;                       // requests.authorize: GET /authorize + /_sim/authorize
  long authorization_codes_issued = -1;      // codes handed to a redirect URI
  long authorization_code_redemptions = -1;  // successful authorization_code grants
  long code_reuse = -1;                      // a code presented again after its redemption
  long pkce_failures = -1;                   // code_verifier missing or not matching the challenge
  long redirect_uri_mismatches = -1;         // unregistered at /authorize, or differing at /token
  long authorize_without_pkce = -1;          // /authorize requests without code_challenge
  long policy_refusals = -1;                 // answers refused by the tenant policy
  std::string json{};                        // the whole answer
};

// What the simulated browser saw at the end of POST /_sim/authorize.
struct BrowserOutcome {
  long status = 0;                  // 302 (redirect), 200 (form_post) or 400 (error page)
  std::string location{};           // the redirect address; empty on an error page
  std::string error{};              // OAuth error (access_denied, ...); empty on success
  std::vector<long> error_codes{};  // the AADSTS number, e.g. {65004} or {50011}
  std::string error_description{};
  std::string json{};  // the whole answer
};

// A tenant's policy (POST /_sim/policy); every field has the simulator's default.
struct TenantPolicy {
  std::string tenant = "*";  // "*": every tenant without a policy of its own
  // allow | refuse_at_request (/devicecode, and any poll after approval) | refuse_at_poll (the
  // first poll after the user approved).
  std::string device_code = "allow";
  long device_code_error_code = 530035;     // 530035 security defaults, 53003 Conditional Access
  bool refuse_device_code_refresh = false;  // refresh tokens of device-code sign-ins refused
  long refresh_error_code = 530036;
  std::string error = "invalid_grant";  // the OAuth `error` of every refusal (or access_denied)
  std::string description{};            // empty: Microsoft's text for the AADSTS number
};

class Simulator {
 public:
  // Starts the simulator with --port-file --cert --key (the PKI's server certificate) and
  // `extra_args` (e.g. {"--interval", "1"}); returns once the port file is written (10 s).
  explicit Simulator(const Pki& pki, std::vector<std::string> extra_args = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  int https_port() const { return https_port_; }
  int http_port() const { return http_port_; }
  std::string https_url() const;  // https://127.0.0.1:PORT (identity.authority)
  std::string http_url() const;   // http://127.0.0.1:PORT (control API)

  // Control API; each fails the test unless the simulator answers 2xx.
  void approve(const std::string& user_code, const std::string& name = "Adele Vance",
               const std::string& username = "adele@contoso.com");
  void decline(const std::string& user_code);
  SimulatorCounters counters();
  void config(const std::string& json);
  void fail(const std::string& json);
  void expire_tokens();

  // The browser sign-in. `sign_in_url` is the agent's published sign_in_url (absolute).
  // The user signs in as name/username: returns the address the browser ends at (the redirect
  // URI with code, state and session_state), to paste back with `complete`. Fails the test
  // unless the simulator redirected with a code.
  std::string browser_sign_in(const std::string& sign_in_url,
                              const std::string& name = "Adele Vance",
                              const std::string& username = "adele@contoso.com");
  // The user declines: returns the redirect address with error=access_denied (AADSTS65004).
  std::string browser_decline(const std::string& sign_in_url);
  // Any outcome (an error page for a bad redirect_uri, ...); action: approve | decline.
  BrowserOutcome browser_authorize(const std::string& sign_in_url,
                                   const std::string& action = "approve");
  // A plain GET of the sign_in_url, as `curl` without -L: the 302 (its `location`) or the page.
  HttpReply browser_get(const std::string& sign_in_url);
  // Every authorization code issued so far expires now (the next redemption: AADSTS70008).
  void expire_authorization_codes();

  // Tenant policy: replaces `policy.tenant`'s policy; clear_tenant_policies() removes them all.
  void set_tenant_policy(const TenantPolicy& policy);
  void clear_tenant_policies();
  // "device_code" or "authorization_code": how the family of that refresh token began;
  // empty when the simulator never issued it.
  std::string refresh_token_origin(const std::string& refresh_token);

  // The identity endpoints over HTTPS, verified with the PKI's CA ("/common/oauth2/v2.0/token").
  HttpReply https_get(const std::string& path_and_query);
  HttpReply https_post_form(const std::string& path, const std::string& form);

  // Any control call, any status (path like "/_sim/approve", on the HTTP port).
  HttpReply post(const std::string& path, const std::string& json = "{}");
  HttpReply get(const std::string& path);

  void stop();  // SIGTERM, wait (SIGKILL after 5 s)
  Process& process() { return *process_; }
  std::string log_text() const { return process_->log_text(); }

 private:
  void control(const std::string& path, const std::string& json);

  TempDir dir_{"g2m-simulator"};
  std::string ca_;
  std::unique_ptr<Process> process_;
  int https_port_ = 0;
  int http_port_ = 0;
};

}  // namespace g2m::test
