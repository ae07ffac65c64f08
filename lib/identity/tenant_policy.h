#pragma once

#include <optional>
#include <string>

namespace g2m {

struct AuthFailure;

// A tenant's policy that refuses the device-code flow (docs/mqtt-api.md "Browser sign-in and tenant
// policy"): security defaults (every tenant created since 1 July 2026) or Conditional Access
// (authentication-flow policies, Microsoft's managed "Block device code flow", device-state
// requirements).
enum class TenantPolicy { security_defaults, conditional_access };

const char* to_string(TenantPolicy policy);

// The policy behind a refusal, recognised by its AADSTS code in `error_codes` or in the
// description, whatever the OAuth `error` string is: 530035 → security defaults; 53003, 53000,
// 50097, 50005 and 530036 (a refresh token a device-code sign-in produced) → Conditional Access.
std::optional<TenantPolicy> tenant_policy_of(const AuthFailure& failure);

// The sentence an administrator reads: what blocks the sign-in and what can be changed.
// `detail` is the platform's own first line (with its AADSTS code), appended for support.
std::string tenant_policy_description(TenantPolicy policy, const std::string& detail);

// Marks a failure as a policy refusal: sets its policy and replaces its description with the
// administrator's sentence. A failure that is no policy refusal is left as it is.
void recognise_tenant_policy(AuthFailure& failure);

}  // namespace g2m
