#include "http/proxy_environment.h"

#include <cstdlib>

namespace g2m {

namespace {
std::optional<std::string> take(const char* name) {
  std::optional<std::string> value;
  if (const char* text = std::getenv(name); text != nullptr && text[0] != '\0') value = text;
  ::unsetenv(name);
  return value;
}
}  // namespace

const ProxyEnvironment& take_proxy_environment() {
  static const ProxyEnvironment taken{take("http_proxy"), take("https_proxy")};
  return taken;
}

}  // namespace g2m
