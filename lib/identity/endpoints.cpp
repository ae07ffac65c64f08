#include "identity/endpoints.h"

#include "json/json.h"

namespace g2m {

Endpoints microsoft_endpoints(const IdentityOptions& account) {
  const bool v1 = account.platform.protocol == Protocol::v1;
  const std::string base = account.platform.authority + "/" + account.tenant + "/oauth2/";
  Endpoints e{base + (v1 ? "devicecode" : "v2.0/devicecode"), base + (v1 ? "token" : "v2.0/token"),
              std::nullopt, std::nullopt};
  if (!v1) e.authorization = base + "v2.0/authorize";
  return e;
}

std::vector<std::string> discovery_urls(const std::string& issuer) {
  std::vector<std::string> urls = {issuer + "/.well-known/openid-configuration"};
  const auto scheme_end = issuer.find("://");
  const auto path_start =
      scheme_end == std::string::npos ? std::string::npos : issuer.find('/', scheme_end + 3);
  if (path_start == std::string::npos) {
    urls.push_back(issuer + "/.well-known/oauth-authorization-server");
  } else {
    urls.push_back(issuer.substr(0, path_start) + "/.well-known/oauth-authorization-server" +
                   issuer.substr(path_start));
  }
  return urls;
}

std::variant<Endpoints, std::string> parse_discovery(const std::string& body) {
  const auto doc = json::parse_object(body);
  if (!doc) return std::string("the discovery document is not a JSON object");
  Endpoints e;
  auto device = json::get_string(*doc, "device_authorization_endpoint");
  auto token = json::get_string(*doc, "token_endpoint");
  if (!device || device->empty()) {
    return std::string(
        "the discovery document has no device_authorization_endpoint (the provider does not "
        "advertise the device flow; set identity.device_authorization_endpoint)");
  }
  if (!token || token->empty()) return std::string("the discovery document has no token_endpoint");
  e.device_authorization = *device;
  e.token = *token;
  e.userinfo = json::get_string(*doc, "userinfo_endpoint");
  if (auto authorization = json::get_string(*doc, "authorization_endpoint");
      authorization && !authorization->empty()) {
    e.authorization = *authorization;
  }
  return e;
}

// Discovery retries are driven by the accounts' own timers: the resolver needs no loop.
EndpointResolver::EndpointResolver(PlatformOptions platform, Http& http, Logger& log)
    : platform_(std::move(platform)), http_(http), log_(log) {
  const auto& id = platform_;
  if (id.provider == Provider::oidc && id.device_authorization_endpoint && id.token_endpoint) {
    explicit_ = Endpoints{*id.device_authorization_endpoint, *id.token_endpoint, std::nullopt,
                          std::nullopt};
    // With an issuer too, discovery still runs once for the userinfo endpoint (the user's name
    // when the id_token has none); without one, the explicit endpoints are all there is.
    if (!id.issuer) discovered_ = explicit_;
  }
}

void EndpointResolver::resolve(const IdentityOptions& account, const Clock& clock,
                               std::function<void(Result)> done) {
  if (platform_.provider == Provider::microsoft) {
    done(microsoft_endpoints(account));
    return;
  }
  if (discovered_) {
    done(*discovered_);
    return;
  }
  waiters_.push_back(std::move(done));
  if (!in_flight_) discover(0, clock);
}

void EndpointResolver::discover(std::size_t url_index, const Clock& clock) {
  in_flight_ = true;
  const auto urls = discovery_urls(platform_.issuer.value_or(""));
  HttpRequest request;
  request.url = urls[url_index];
  log_.debug("discovery: GET ", request.url);
  http_.send(std::move(request), [this, url_index, urls, &clock](HttpResponse response) {
    if (response.ok() && response.status == 404 && url_index + 1 < urls.size()) {
      discover(url_index + 1, clock);  // RFC 8414's location
      return;
    }
    if (response.ok() && response.status == 200) {
      auto parsed = parse_discovery(response.body);
      if (auto* endpoints = std::get_if<Endpoints>(&parsed)) {
        failures_ = 0;
        const auto& id = platform_;
        // Explicit endpoints in the config win over the document's.
        if (id.device_authorization_endpoint) {
          endpoints->device_authorization = *id.device_authorization_endpoint;
        }
        if (id.token_endpoint) endpoints->token = *id.token_endpoint;
        discovered_ = *endpoints;
        log_.info("discovery: device authorization at ", endpoints->device_authorization);
        finish(*endpoints);
        return;
      }
      AuthFailure f;
      f.kind = AuthFailure::Kind::terminal;
      f.error = "invalid_discovery";
      f.description = std::get<std::string>(parsed) + " (" + urls[url_index] + ")";
      finish(f);
      return;
    }
    AuthFailure f = classify_failure(response, clock.system());
    if (f.kind != AuthFailure::Kind::transient && response.ok() && response.status == 404) {
      f.kind = AuthFailure::Kind::terminal;
      f.error = "invalid_discovery";
      f.description = "no discovery document at " + urls.front() + " nor " + urls.back();
    } else {
      f.kind = AuthFailure::Kind::transient;
      f.description = "discovery failed: " + f.description;
      f.retry_after = std::chrono::duration_cast<Seconds>(
          retry_delay(failures_, Seconds(5), Millis(300'000), jitter_, f.retry_after));
    }
    finish(f);
  });
}

void EndpointResolver::finish(const Result& result) {
  in_flight_ = false;
  if (explicit_ && std::holds_alternative<AuthFailure>(result)) {
    // Discovery was only for userinfo: the explicit endpoints work without it.
    discovered_ = explicit_;
    finish(*explicit_);
    return;
  }
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w(result);
}

}  // namespace g2m
