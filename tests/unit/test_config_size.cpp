// mqtt.max_message_size (CONTRACT §3): sizes are a bare number of bytes or <n>KiB / <n>MiB.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"

using g2m::ConfigError;
using g2m::parse_config;
using g2m::parse_size;

namespace {

std::string config_with(const std::string& mqtt_line) {
  return "mqtt:\n  server: mqtt://localhost\n" + mqtt_line +
         "accounts:\n  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000000\n";
}

std::vector<std::string> size_errors(const std::string& value) {
  try {
    parse_config(config_with("  max_message_size: " + value + "\n"), "config.yaml");
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

}  // namespace

TEST_CASE("config: a size is a number of bytes, or <n>KiB or <n>MiB") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("1500") == 1500u);
  CHECK(parse_size("64KiB") == 65536u);
  CHECK(parse_size("1MiB") == 1048576u);
  CHECK(parse_size("10MiB") == 10485760u);
  for (const char* bad : {"", "KiB", "-1", "1.5MiB", "1 MiB", "1kib", "1KB", "1MB", "1GiB", "1MiBs",
                          "99999999999999999999", "18446744073709551615MiB"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_size(bad));
  }
}

TEST_CASE("config: mqtt.max_message_size defaults to 1MiB and takes a size") {
  CHECK(parse_config(config_with(""), "c.yaml").mqtt.max_message_size == 1048576u);
  CHECK(parse_config(config_with("  max_message_size: 256KiB\n"), "c.yaml").mqtt.max_message_size ==
        262144u);
  CHECK(parse_config(config_with("  max_message_size: 4096\n"), "c.yaml").mqtt.max_message_size ==
        4096u);
  CHECK(parse_config(config_with("  max_message_size: 10MiB\n"), "c.yaml").mqtt.max_message_size ==
        10485760u);
}

TEST_CASE("config: a malformed or out-of-range mqtt.max_message_size is an error at its line") {
  CHECK(size_errors("1MB") ==
        std::vector<std::string>{"config.yaml:3: mqtt.max_message_size: `1MB` is not a size (use "
                                 "a number of bytes, or <n>KiB or <n>MiB with a whole number n)"});
  CHECK(
      size_errors("[1]") ==
      std::vector<std::string>{"config.yaml:3: mqtt.max_message_size: must be a size, not a list"});
  CHECK(size_errors("100") ==
        std::vector<std::string>{
            "config.yaml:3: mqtt.max_message_size: must be between 1KiB and 256MiB"});
  CHECK(size_errors("257MiB") ==
        std::vector<std::string>{
            "config.yaml:3: mqtt.max_message_size: must be between 1KiB and 256MiB"});
  CHECK(size_errors("1KiB").empty());
  CHECK(size_errors("256MiB").empty());
}

TEST_CASE("config: the example config/config.yaml shows mqtt.max_message_size at its default") {
#ifdef G2M_SOURCE_DIR
  const std::filesystem::path source = G2M_SOURCE_DIR;
#else
  const std::filesystem::path source =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
#endif
  const auto cfg = g2m::load_config(source / "config" / "config.yaml");
  CHECK(cfg.mqtt.max_message_size == 1048576u);
}
