// What the identity code reads of the configuration: identity_options() and platform_options().
#include <doctest/doctest.h>

#include "config/config.h"
#include "identity_rig.h"
#include "temp_dir.h"

using namespace g2m;

TEST_CASE("identity options: an account with only a client_id is the unit tests' kitchen") {
  const Config cfg = parse_config(std::string("mqtt:\n  server: mqtt://localhost\nidentity:\n"
                                              "  authority: http://127.0.0.1:9\n"
                                              "  graph: http://127.0.0.1:9/v1.0\n"
                                              "accounts:\n  kitchen:\n    client_id: ") +
                                      test::kKitchenClientId + "\n",
                                  "config.yaml");
  const IdentityOptions o = identity_options(cfg, cfg.accounts[0]);
  const IdentityOptions kitchen = test::kitchen_options();
  CHECK(o.platform.provider == Provider::microsoft);
  CHECK(o.platform.protocol == Protocol::v2);
  CHECK_FALSE(o.platform.v1());
  CHECK(o.platform.authority == kitchen.platform.authority);
  CHECK(o.platform.graph == kitchen.platform.graph);
  CHECK_FALSE(o.platform.issuer);
  CHECK(o.name == kitchen.name);
  CHECK(o.tenant == kitchen.tenant);
  CHECK(o.client_id == kitchen.client_id);
  CHECK(o.scopes == kitchen.scopes);
  CHECK(o.resource == std::optional<std::string>("http://127.0.0.1:9"));  // used under v1 only
  CHECK(o.redirect_uri == kitchen.redirect_uri);
  CHECK_FALSE(o.client_secret);
}

TEST_CASE("identity options: v1, a tenant and a resource are carried over") {
  const Config cfg = parse_config(R"(mqtt:
  server: mqtt://localhost
identity:
  protocol: v1
accounts:
  hall:
    tenant: organizations
    client_id: 00000000-0000-0000-0000-000000000001
    resource: https://graph.windows.net
)",
                                  "config.yaml");
  const IdentityOptions o = identity_options(cfg, cfg.accounts[0]);
  CHECK(o.platform.v1());
  CHECK(o.platform.authority == "https://login.microsoftonline.com");
  CHECK(o.name == "hall");
  CHECK(o.tenant == "organizations");
  CHECK(o.resource == std::optional<std::string>("https://graph.windows.net"));
}

TEST_CASE("identity options: provider oidc brings its issuer, endpoints and the client secret") {
  const test::TempDir tmp;
  const auto secret = tmp.write("kitchen.secret", "very-secret\n");
  const Config cfg = parse_config(R"(mqtt:
  server: mqtt://h
identity:
  provider: oidc
  issuer: https://id.example.com/realm
  device_authorization_endpoint: https://id.example.com/device
  token_endpoint: https://id.example.com/token
  api: https://api.example.com/
accounts:
  kitchen:
    client_id: any-string-will-do
    scopes: [openid, email]
    redirect_uri: http://localhost:8400/callback
    client_secret_file: )" + secret.string() +
                                      "\n",
                                  "config.yaml");
  const PlatformOptions p = platform_options(cfg);
  CHECK(p.provider == Provider::oidc);
  CHECK_FALSE(p.v1());
  CHECK(p.issuer == std::optional<std::string>("https://id.example.com/realm"));
  CHECK(p.device_authorization_endpoint ==
        std::optional<std::string>("https://id.example.com/device"));
  CHECK(p.token_endpoint == std::optional<std::string>("https://id.example.com/token"));
  const IdentityOptions o = identity_options(cfg, cfg.accounts[0]);
  CHECK(o.platform.issuer == p.issuer);
  CHECK(o.scopes == std::vector<std::string>{"openid", "email"});
  CHECK(o.redirect_uri == std::optional<std::string>("http://localhost:8400/callback"));
  REQUIRE(o.client_secret);
  CHECK(o.client_secret->reveal() == "very-secret");
}
