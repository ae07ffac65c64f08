#include "identity/device_code_sign_in.h"

#include <memory>

#include "common/time_format.h"
#include "identity/identity_requests.h"

namespace g2m {

namespace {
constexpr Millis kMaxBackoff{300'000};  // docs/mqtt-api.md: backoff capped at 5 minutes
}

DeviceCodeSignIn::DeviceCodeSignIn(const SignInContext& context, SignInSteps& steps,
                                   std::uint64_t seed)
    : ctx_(context), steps_(steps), jitter_(seed), timer_(context.loop), approved_(context.loop) {}

DeviceCodeSignIn::~DeviceCodeSignIn() {
  stop();
}

void DeviceCodeSignIn::begin(const Endpoints& endpoints) {
  endpoints_ = endpoints;
  failures_ = 0;
  request_code();
}

void DeviceCodeSignIn::stop() {
  timer_.cancel();
  approved_.cancel();
  if (request_) ctx_.http.cancel(*request_);
  request_.reset();
}

void DeviceCodeSignIn::request_code() {
  steps_.enter(SignInPhase::requesting_code);
  HttpRequest request = device_code_request(ctx_.account, *endpoints_);
  // Expiry counts from when the device-code request is sent (Microsoft's documentation).
  requested_at_ = ctx_.loop.clock().steady();
  requested_at_system_ = ctx_.loop.clock().system();
  ctx_.log.info(ctx_.account.name, ": requesting a device code");
  request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    request_.reset();
    on_code(std::move(response));
  });
}

void DeviceCodeSignIn::on_code(HttpResponse response) {
  // Only a loopback http:// identity server may send http:// verification pages.
  auto outcome = parse_device_code_response(response, ctx_.loop.clock().system(),
                                            endpoints_->device_authorization);
  if (auto* failure = std::get_if<AuthFailure>(&outcome)) {
    if (failure->kind == AuthFailure::Kind::transient) {
      const Millis delay =
          retry_delay(failures_, Seconds(5), kMaxBackoff, jitter_, failure->retry_after);
      timer_.start_after(delay, [this] { request_code(); });
      steps_.transient(*failure, delay);
      return;
    }
    steps_.refused(*failure);
    return;
  }
  flow_.emplace(std::move(std::get<DeviceCode>(outcome)), requested_at_, ctx_.loop.clock().steady(),
                requested_at_system_, static_cast<std::uint64_t>(jitter_.next() * 1e18));
  update_prompt();
  ctx_.log.info(ctx_.account.name, ": code ", flow_->code().user_code, " issued, expires at ",
                format_utc(flow_->expires_at_system()));
  schedule_poll();
  steps_.waiting(*prompt_);
}

void DeviceCodeSignIn::update_prompt() {
  const auto& c = flow_->code();
  SignInPrompt p;
  p.method = SignInMethod::device_code;
  p.user_code = c.user_code;
  p.verification_uri = c.verification_uri;
  p.verification_uri_complete = c.verification_uri_complete;
  p.message = c.message;
  p.expires_at = flow_->expires_at_system();
  p.expires_at_steady = flow_->expires_at();
  p.interval = flow_->interval();
  prompt_ = std::move(p);
}

void DeviceCodeSignIn::schedule_poll() {
  // The driver's expiry timer ends the sign-in; no poll is sent at or after the expiry.
  if (flow_->next_poll_at() >= flow_->expires_at()) return;
  timer_.start_at(flow_->next_poll_at(), [this] { send_poll(); });
}

void DeviceCodeSignIn::send_poll() {
  HttpRequest request = device_token_request(ctx_.account, *endpoints_, flow_->code().device_code);
  // A poll has a due time (the interval): it goes before bulk work of other accounts.
  request.priority = HttpPriority::urgent;
  flow_->poll_sent();
  request_ = ctx_.http.send(std::move(request), [this](HttpResponse response) {
    request_.reset();
    on_poll(std::move(response));
  });
}

void DeviceCodeSignIn::on_poll(HttpResponse response) {
  const auto now = ctx_.loop.clock().steady();
  auto decision =
      flow_->on_poll_result(parse_token_response(response, ctx_.loop.clock().system()), now);
  using Kind = DeviceFlow::Decision::Kind;
  switch (decision.kind) {
    case Kind::poll_again:
      schedule_poll();
      if (decision.interval_changed) {
        update_prompt();
        steps_.interval_changed();
      }
      if (decision.failure) {
        steps_.transient(*decision.failure,
                         std::chrono::duration_cast<Millis>(decision.next_poll_at - now));
      }
      return;
    case Kind::approved: {
      // What follows (the token file, /me, the publishes) has no deadline; other accounts' polls
      // do: when 1,000 approvals come in one second, their polls go first (EventLoop::defer).
      auto tokens = std::make_shared<TokenResponse>(std::move(*decision.tokens));
      approved_.start([this, tokens] { steps_.tokens(std::move(*tokens)); });
      return;
    }
    case Kind::declined:
      steps_.declined();
      return;
    case Kind::expired:
      steps_.expired();
      return;
    case Kind::failed:
      steps_.refused(*decision.failure);
      return;
  }
}

}  // namespace g2m
