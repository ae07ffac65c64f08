// sign_in_method and redirect_uri (config/config.yaml, §6 "Browser sign-in").
#include <doctest/doctest.h>

#include "config/config.h"

using namespace g2m;

namespace {
const char* const kClientId = "3f2c1a9e-5b7d-4c8e-9a1f-2d3e4f5a6b7c";

std::string file(const std::string& identity, const std::string& account) {
  return "mqtt:\n  server: mqtt://localhost\n" + identity +
         "accounts:\n  kitchen:\n    client_id: " + kClientId + "\n" + account;
}

std::vector<std::string> errors_of(const std::string& text) {
  try {
    parse_config(text, "config.yaml");
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}
}  // namespace

TEST_CASE("config: sign_in_method defaults to auto with the native-client redirect") {
  const Config c = parse_config(file("", ""), "config.yaml");
  CHECK(c.accounts[0].sign_in_method == SignInMethodSetting::auto_);
  CHECK(c.accounts[0].redirect_uri ==
        std::optional<std::string>("https://login.microsoftonline.com/common/oauth2/nativeclient"));
  // A national cloud's authority gives its own native-client page.
  const Config us = parse_config(
      file("identity:\n  authority: https://login.microsoftonline.us\n", ""), "config.yaml");
  CHECK(us.accounts[0].redirect_uri ==
        std::optional<std::string>("https://login.microsoftonline.us/common/oauth2/nativeclient"));
}

TEST_CASE("config: sign_in_method and redirect_uri take the documented values") {
  const Config c = parse_config(
      file("", "    sign_in_method: browser\n    redirect_uri: http://localhost:8400/done\n"),
      "config.yaml");
  CHECK(c.accounts[0].sign_in_method == SignInMethodSetting::browser);
  CHECK(c.accounts[0].redirect_uri == std::optional<std::string>("http://localhost:8400/done"));
  CHECK(
      parse_config(file("", "    sign_in_method: device_code\n"), "c").accounts[0].sign_in_method ==
      SignInMethodSetting::device_code);
}

TEST_CASE("config: bad sign_in_method and redirect_uri values name the line and key") {
  CHECK(
      errors_of(file("", "    sign_in_method: qr\n")) ==
      std::vector<std::string>{
          "config.yaml:6: accounts.kitchen.sign_in_method: must be device_code, browser or auto"});
  for (const char* bad : {"http://example.com/cb", "ftp://x/y", "nativeclient", "https://x/a b"}) {
    CHECK(errors_of(file("", std::string("    redirect_uri: \"") + bad + "\"\n")) ==
          std::vector<std::string>{"config.yaml:6: accounts.kitchen.redirect_uri: must be an "
                                   "https:// URI or http://localhost[:port][/path]"});
  }
}

TEST_CASE("config: protocol v1 has no browser sign-in") {
  CHECK(errors_of(file("identity:\n  protocol: v1\n", "    sign_in_method: browser\n")) ==
        std::vector<std::string>{"config.yaml:8: accounts.kitchen.sign_in_method: browser is not "
                                 "available under protocol v1 (only the device code is)"});
}

TEST_CASE("config: under oidc the browser sign-in needs a redirect_uri, auto without one warns") {
  const std::string oidc = "identity:\n  provider: oidc\n  issuer: https://idp.example.com\n";
  CHECK(errors_of(file(oidc, "    sign_in_method: browser\n")) ==
        std::vector<std::string>{"config.yaml:9: accounts.kitchen.redirect_uri: required with "
                                 "provider oidc for sign_in_method browser"});
  const Config c = parse_config(file(oidc, ""), "config.yaml");
  CHECK_FALSE(c.accounts[0].redirect_uri);
  REQUIRE(c.warnings.size() == 1);
  CHECK(c.warnings[0].find("accounts.kitchen.redirect_uri") != std::string::npos);
  CHECK(c.warnings[0].find("device code only") != std::string::npos);
}
