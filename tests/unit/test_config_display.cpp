// The config keys for small displays and Home Assistant: mqtt.plain_topics, a resource's fields
// and ha_state (config/config.yaml).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/config.h"

using namespace g2m;

namespace {

std::string with_resource(const std::string& resource, const std::string& mqtt_extra = "") {
  // Lines 1-2 mqtt, 3-5 the account, 6 resources:, 7 the resource's key and on.
  return "mqtt:\n  server: mqtt://localhost\n" + mqtt_extra +
         "accounts:\n  kitchen:\n    client_id: 00000000-0000-0000-0000-000000000001\n"
         "    resources:\n      today:\n" +
         resource;
}

std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    parse_config(yaml, "config.yaml");
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

}  // namespace

TEST_CASE("config: plain_topics defaults to false and reads a boolean") {
  CHECK_FALSE(parse_config(with_resource("        path: /me\n"), "config.yaml").mqtt.plain_topics);
  CHECK(parse_config(with_resource("        path: /me\n", "  plain_topics: true\n"), "config.yaml")
            .mqtt.plain_topics);
  CHECK(errors_of(with_resource("        path: /me\n", "  plain_topics: maybe\n")) ==
        std::vector<std::string>{"config.yaml:3: mqtt.plain_topics: must be true or false"});
}

TEST_CASE("config: a resource's fields and ha_state") {
  const Config c =
      parse_config(with_resource("        path: /me/events\n"
                                 "        fields: { next: /value/0/subject, all: \"\", "
                                 "odd: /a~1b/~0c }\n"
                                 "        ha_state: \"{{ value_json.value | count }}\"\n"),
                   "config.yaml");
  const auto& r = c.accounts[0].resources[0];
  REQUIRE(r.fields.size() == 3);
  CHECK(r.fields[0] == std::pair<std::string, std::string>{"next", "/value/0/subject"});
  CHECK(r.fields[1] == std::pair<std::string, std::string>{"all", ""});
  CHECK(r.fields[2] == std::pair<std::string, std::string>{"odd", "/a~1b/~0c"});
  CHECK(r.ha_state == "{{ value_json.value | count }}");
  const Config plain = parse_config(with_resource("        path: /me\n"), "config.yaml");
  CHECK(plain.accounts[0].resources[0].fields.empty());
  CHECK_FALSE(plain.accounts[0].resources[0].ha_state);
}

TEST_CASE("config: a field name or pointer that is wrong is an error at its line") {
  CHECK(errors_of(with_resource("        path: /me\n"
                                "        fields:\n"
                                "          \"bad name\": /x\n"
                                "          relative: value/0\n"
                                "          tilde: /a~2\n"
                                "          nested: { a: /x }\n"
                                "        ha_state: \"\"\n")) ==
        std::vector<std::string>{
            "config.yaml:10: accounts.kitchen.resources.today.fields.bad name: a field name must "
            "be 1 to 64 letters, digits, `_` or `-`",
            "config.yaml:11: accounts.kitchen.resources.today.fields.relative: must be a JSON "
            "pointer (RFC 6901) such as /value/0/subject",
            "config.yaml:12: accounts.kitchen.resources.today.fields.tilde: must be a JSON "
            "pointer (RFC 6901) such as /value/0/subject",
            "config.yaml:13: accounts.kitchen.resources.today.fields.nested: must be a string, not "
            "a map: this looks like a section in the wrong place (check the key's spelling and its "
            "indentation)",
            "config.yaml:14: accounts.kitchen.resources.today.ha_state: must not be empty",
        });
}
