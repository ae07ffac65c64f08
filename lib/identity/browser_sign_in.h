#pragma once

#include <optional>
#include <set>
#include <string>
#include <variant>

#include "identity/authorization_code.h"
#include "identity/sign_in.h"

namespace g2m {

// The browser method (docs/mqtt-api.md "Browser sign-in and tenant policy"): the authorization code
// with PKCE for a native client. It sends nothing until the user's address comes back; then it
// redeems the code once. Tenants that block the device code allow it.
class BrowserSignIn : public SignInStrategy {
 public:
  static constexpr Seconds kLifetime{15 * 60};

  BrowserSignIn(const SignInContext& context, SignInSteps& steps);
  ~BrowserSignIn() override;

  SignInMethod method() const override { return SignInMethod::browser; }
  void begin(const Endpoints& endpoints) override;
  void stop() override;
  const SignInPrompt* prompt() const override { return prompt_ ? &*prompt_ : nullptr; }

  // What a pasted address is: refused (the sign-in waits on), declined, or a code now being
  // redeemed (the outcome comes as a step).
  struct Refused {
    std::string why;
  };
  struct Declined {
    RedirectError error;
  };
  struct Redeeming {};
  using Check = std::variant<Refused, Declined, Redeeming>;
  Check complete(const std::string& address);

 private:
  void on_token(HttpResponse response);

  const SignInContext& ctx_;
  SignInSteps& steps_;
  std::optional<Endpoints> endpoints_;
  std::optional<SignInPrompt> prompt_;
  Pkce pkce_;
  std::string state_;
  std::string redirect_uri_;
  std::optional<Http::RequestId> request_;
  // Codes already sent to the token endpoint, by their challenge-style digest: a code is
  // redeemed at most once (docs/mqtt-api.md "Commands" complete), even if the same address is
  // pasted again.
  std::set<std::string> sent_codes_;
};

}  // namespace g2m
