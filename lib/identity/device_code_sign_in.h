#pragma once

#include <optional>

#include "common/backoff.h"
#include "identity/device_flow.h"
#include "identity/sign_in.h"

namespace g2m {

// The device-code method (RFC 8628): requests a code, publishes it, polls the token endpoint
// exactly as fast as DeviceFlow allows.
class DeviceCodeSignIn : public SignInStrategy {
 public:
  DeviceCodeSignIn(const SignInContext& context, SignInSteps& steps, std::uint64_t seed);
  ~DeviceCodeSignIn() override;

  SignInMethod method() const override { return SignInMethod::device_code; }
  void begin(const Endpoints& endpoints) override;
  void stop() override;
  const SignInPrompt* prompt() const override { return prompt_ ? &*prompt_ : nullptr; }

 private:
  void request_code();
  void on_code(HttpResponse response);
  void schedule_poll();
  void send_poll();
  void on_poll(HttpResponse response);
  void update_prompt();

  const SignInContext& ctx_;
  SignInSteps& steps_;
  Jitter jitter_;
  std::optional<Endpoints> endpoints_;
  std::optional<DeviceFlow> flow_;
  std::optional<SignInPrompt> prompt_;
  std::optional<Http::RequestId> request_;
  Timer timer_;
  Deferred approved_;  // the approved answer, handled when the loop has time
  SteadyTime requested_at_{};
  SystemTime requested_at_system_{};
  int failures_ = 0;
};

}  // namespace g2m
