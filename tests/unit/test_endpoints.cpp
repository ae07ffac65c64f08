#include <doctest/doctest.h>

#include "identity/endpoints.h"
#include "identity/oauth.h"

using namespace g2m;

namespace {
const SystemTime kNow = std::chrono::sys_days{std::chrono::year{2026} / 12 / 3};
}  // namespace

TEST_CASE("endpoints: Microsoft v2 and v1 endpoints are built from authority and tenant") {
  IdentityOptions account;
  account.tenant = "organizations";
  auto v2 = microsoft_endpoints(account);
  CHECK(v2.device_authorization ==
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode");
  CHECK(v2.token == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token");
  account.platform.protocol = Protocol::v1;
  auto v1 = microsoft_endpoints(account);
  CHECK(v1.device_authorization ==
        "https://login.microsoftonline.com/organizations/oauth2/devicecode");
  CHECK(v1.token == "https://login.microsoftonline.com/organizations/oauth2/token");
}

TEST_CASE(
    "endpoints: discovery tries OpenID Connect first, then RFC 8414 before the issuer's path") {
  CHECK(discovery_urls("https://id.example.com") ==
        std::vector<std::string>{"https://id.example.com/.well-known/openid-configuration",
                                 "https://id.example.com/.well-known/oauth-authorization-server"});
  CHECK(discovery_urls("https://id.example.com/realms/home") ==
        std::vector<std::string>{
            "https://id.example.com/realms/home/.well-known/openid-configuration",
            "https://id.example.com/.well-known/oauth-authorization-server/realms/home"});
}

TEST_CASE("endpoints: a discovery document without the device endpoint names the missing key") {
  auto ok = parse_discovery(R"({"issuer":"x","device_authorization_endpoint":"https://x/device",
    "token_endpoint":"https://x/token","userinfo_endpoint":"https://x/me"})");
  REQUIRE(std::holds_alternative<Endpoints>(ok));
  CHECK(std::get<Endpoints>(ok).userinfo == "https://x/me");
  auto missing = parse_discovery(R"({"issuer":"x","token_endpoint":"https://x/token"})");
  REQUIRE(std::holds_alternative<std::string>(missing));
  CHECK(std::get<std::string>(missing).find("device_authorization_endpoint") != std::string::npos);
  auto no_token = parse_discovery(R"({"device_authorization_endpoint":"https://x/device"})");
  CHECK(std::get<std::string>(no_token).find("token_endpoint") != std::string::npos);
  CHECK(std::holds_alternative<std::string>(parse_discovery("[]")));
}

TEST_CASE("endpoints: form-encoded answers (GitHub) are understood") {
  HttpResponse r;
  r.status = 200;
  r.content_type = "application/x-www-form-urlencoded; charset=utf-8";
  r.body =
      "device_code=3584d83530557fdd1f46af8289938c8ef79f9dc5&expires_in=900&interval=5&"
      "user_code=WDJB-MJHT&verification_uri=https%3A%2F%2Fgithub.com%2Flogin%2Fdevice";
  auto code = parse_device_code_response(r, kNow);
  REQUIRE(std::holds_alternative<DeviceCode>(code));
  CHECK(std::get<DeviceCode>(code).verification_uri == "https://github.com/login/device");
  CHECK(std::get<DeviceCode>(code).user_code == "WDJB-MJHT");
  r.body = "error=authorization_pending&error_description=pending+still";
  auto poll = parse_token_response(r, kNow);
  REQUIRE(std::holds_alternative<AuthFailure>(poll));
  CHECK(std::get<AuthFailure>(poll).error == "authorization_pending");
  CHECK(std::get<AuthFailure>(poll).description == "pending still");
}
