#include "identity/tenant_policy.h"

#include <array>
#include <cctype>

#include "identity/oauth.h"

namespace g2m {

namespace {

constexpr int kSecurityDefaults = 530035;
constexpr std::array<int, 5> kConditionalAccess = {53003, 53000, 50097, 50005, 530036};

std::optional<TenantPolicy> policy_of_code(int code) {
  if (code == kSecurityDefaults) return TenantPolicy::security_defaults;
  for (int c : kConditionalAccess) {
    if (c == code) return TenantPolicy::conditional_access;
  }
  return std::nullopt;
}

// Every "AADSTS<digits>" in a text: Microsoft puts the code at the start of error_description,
// and some answers (a refusal relayed by another service) carry it only there.
std::optional<TenantPolicy> policy_in_text(const std::string& text) {
  static constexpr std::string_view kPrefix = "AADSTS";
  for (auto at = text.find(kPrefix); at != std::string::npos; at = text.find(kPrefix, at + 1)) {
    std::size_t i = at + kPrefix.size();
    long long code = 0;
    std::size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && digits < 9) {
      code = code * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) continue;
    if (auto p = policy_of_code(static_cast<int>(code))) return p;
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(TenantPolicy policy) {
  return policy == TenantPolicy::security_defaults ? "security_defaults" : "conditional_access";
}

std::optional<TenantPolicy> tenant_policy_of(const AuthFailure& failure) {
  // An outage (no answer, 429, 5xx) is retried whatever it mentions; a refusal is recognised
  // whatever its OAuth error string, temporarily_unavailable included.
  const bool outage =
      !failure.http_status || *failure.http_status == 429 || *failure.http_status >= 500;
  if (failure.kind == AuthFailure::Kind::transient && outage) return std::nullopt;
  for (int code : failure.error_codes) {
    if (auto p = policy_of_code(code)) return p;
  }
  return policy_in_text(failure.description);
}

std::string tenant_policy_description(TenantPolicy policy, const std::string& detail) {
  std::string text;
  if (policy == TenantPolicy::security_defaults) {
    text =
        "the tenant's security defaults block sign-in with a device code (every tenant created "
        "since July 2026 has them); an administrator can turn security defaults off (Entra admin "
        "center > Overview > Properties > Manage security defaults), or the user can use the "
        "browser sign-in (login with method browser)";
  } else {
    text =
        "the tenant's Conditional Access policy blocks sign-in with a device code (an "
        "authentication-flows policy, Microsoft's managed policy \"Block device code flow\", or "
        "a device requirement a code sign-in cannot meet); an administrator can exclude this app "
        "or the gateway's users from that policy, or the user can use the browser sign-in "
        "(login with method browser)";
  }
  if (!detail.empty()) text += " [" + detail + "]";
  return text;
}

void recognise_tenant_policy(AuthFailure& failure) {
  if (failure.policy) return;
  const auto policy = tenant_policy_of(failure);
  if (!policy) return;
  failure.policy = policy;
  failure.kind = AuthFailure::Kind::oauth;  // never retried
  failure.description = tenant_policy_description(*policy, failure.description);
}

}  // namespace g2m
