#pragma once

#include <optional>
#include <string>

namespace g2m {

// The proxies the environment names for HTTP, read once (CONTRACT §3 identity.proxy, §6: the
// MQTT connection never goes through a proxy the environment names).
//
// Paho C 1.3.12 reads the lower-case `http_proxy` (plain connections) and `https_proxy` (TLS)
// itself for the broker connection, each time it connects (MQTTProtocolOut.c), and knows no
// `no_proxy`; an empty proxy option does not help, as Paho then falls back to the environment.
// So the first call takes those two variables out of the process environment and keeps their
// values here; CurlHttp hands them to libcurl explicitly (CURLOPT_PROXY, each for the scheme it
// names), which is what libcurl would have read. libcurl reads `http_proxy` (lower case only)
// for http:// URLs and `https_proxy`, then `HTTPS_PROXY`, for https:// URLs, then
// `all_proxy`/`ALL_PROXY`, and applies `no_proxy`/`NO_PROXY` to every proxy, explicit or not:
// all but the two lower-case variables stay in the environment, where it reads them as before.
//
// The first call must come before other threads run (the constructors of CurlHttp and
// PahoMqttClient call it, on the main thread, before anything connects).
struct ProxyEnvironment {
  std::optional<std::string> http_proxy;   // `http_proxy`, when set and not empty
  std::optional<std::string> https_proxy;  // `https_proxy`, when set and not empty
};
const ProxyEnvironment& take_proxy_environment();

}  // namespace g2m
