// Broker security (config/config.yaml mqtt.*; docs/mqtt-api.md "The connection to the broker"): the
// agent logs in with a user name and a password file, works under an ACL that lets displays only
// read, and connects over TLS (with a client certificate too) or WebSockets. A wrong password or a
// wrong CA never makes it hang silently: its log says what is wrong, and it keeps retrying.
#include <doctest/doctest.h>

#include "scenario_broker.h"

using namespace g2m::test;

namespace {

bool is_object(const rapidjson::Value& v) {
  return v.IsObject();
}

// "New connection from 127.0.0.1:N on port P." lines: TCP (and TLS) connection attempts on P.
std::size_t connections_on_port(const Mosquitto& broker, int port) {
  return count_of(lines_with(broker.log_text(), "New connection from"),
                  " on port " + std::to_string(port) + ".");
}

// The agent's error and warning lines about the broker connection.
std::string mqtt_lines(const Agent& agent) {
  const std::string log = agent.log_text();
  return lines_with(log, "error mqtt:") + lines_with(log, "warn  mqtt:");
}

// A log that says what is wrong: the broker refused the credentials ...
bool says_bad_credentials(const std::string& lines) {
  const std::string log = lower(lines);
  return log.find("password") != std::string::npos &&
         (log.find("not authorized") != std::string::npos ||
          log.find("refused") != std::string::npos);
}

// ... or the TLS connection failed.
bool says_tls_failure(const std::string& lines) {
  const std::string log = lower(lines);
  return log.find("certificate") != std::string::npos || log.find("tls") != std::string::npos ||
         log.find("ssl") != std::string::npos;
}

// A full sign-in driven by `admin` (who may send commands), observed by `display`.
void sign_in(BrokerWorld& w) {
  const std::size_t since = w.display.mark();
  const auto reply = w.admin.request("login", R"({"account":"kitchen"})");
  REQUIRE(json_str(reply, "status") == "ok");
  const std::string code = json_str(reply["data"]["code"], "user_code");
  REQUIRE(!code.empty());
  w.simulator.approve(code);
  w.display.wait_for_json(
      "graph2mqtt/kitchen/auth/state",
      [](const rapidjson::Value& v) { return json_str(v, "state") == "signed_in"; }, 15s, since);
}

}  // namespace

TEST_CASE(
    "broker security: the agent logs in with a user name and password_file and a read-only "
    "display sees every topic") {
  BrokerWorld w;
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  Agent& agent = w.start_agent(w.agent_config_for(
      w.broker.url(),
      "client_id: g2m-agent\nusername: agent\npassword_file: " + password.string() + "\n"));
  w.wait_online();
  // The broker saw user `agent` (the trailing newline of the file is not part of the password).
  CHECK_MESSAGE(
      lines_with(w.broker.log_text(), "as g2m-agent ").find("u'agent'") != std::string::npos,
      w.broker.log_text());
  w.display.wait_for_json("graph2mqtt/bridge/info", is_object);
  w.display.wait_for_json("graph2mqtt/kitchen/auth/state", [](const rapidjson::Value& v) {
    return json_str(v, "state") == "signed_out";
  });

  sign_in(w);
  w.display.wait_for_json("graph2mqtt/kitchen/graph/me", [](const rapidjson::Value& v) {
    return json_str(v, "displayName") == "Adele Vance";
  });
  w.display.wait_for_json("graph2mqtt/kitchen/graph/presence", is_object);
  // What a read-only display that connects now gets.
  const auto retained = retained_map(w.display, "graph2mqtt/#");
  INFO("retained:\n" << describe(retained));
  CHECK(retained.count("graph2mqtt/bridge/state") == 1);
  CHECK(retained.count("graph2mqtt/kitchen/auth/state") == 1);
  CHECK(retained.count("graph2mqtt/kitchen/graph/presence") == 1);

  // The MQTT password is a secret: never in the log.
  CHECK(agent.log_text().find(kAgentPassword) == std::string::npos);
  for (const auto& m : w.display.messages()) {
    CHECK(m.payload.find(kAgentPassword) == std::string::npos);
  }
}

TEST_CASE(
    "broker security: a read-only display cannot send commands, and an unauthenticated or "
    "wrong-password client is refused") {
  BrokerWorld w;
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  Agent& agent = w.start_agent(w.agent_config_for(
      w.broker.url(), "username: agent\npassword_file: " + password.string() + "\n"));
  w.wait_online();

  // The display's login request is refused by the broker (MQTT 5: PUBACK "Not authorized") ...
  const auto denied = w.display.try_publish(
      {.topic = "graph2mqtt/bridge/request/login", .payload = R"({"account":"kitchen"})"});
  REQUIRE(denied);
  CHECK(denied->find("Not authorized") != std::string::npos);
  // ... so no sign-in starts: a command sent afterwards by admin finds the account signed out.
  const auto status = w.admin.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(status["data"], "state") == "signed_out");
  w.display.sync();
  CHECK(w.display.messages("graph2mqtt/bridge/response/login").empty());
  CHECK(w.display.messages("graph2mqtt/kitchen/auth/code").size() <= 1);  // the empty one at start
  CHECK(agent.log_text().find("requesting a device code") == std::string::npos);
  CHECK(w.simulator.counters().devicecode == 0);

  // Clients without credentials, or with a wrong password, are refused.
  const auto anonymous = try_connect({.url = w.broker.url()});
  REQUIRE(anonymous);
  CHECK(anonymous->find("Not authorized") != std::string::npos);
  const auto wrong = try_connect({.url = w.broker.url(), .username = "display", .password = "x"});
  REQUIRE(wrong);
  CHECK(wrong->find("Not authorized") != std::string::npos);

  // A user allowed to write requests (admin) does start a sign-in: the ACL made the difference.
  const auto login = w.admin.request("login", R"({"account":"kitchen"})");
  CHECK(json_str(login, "status") == "ok");
  CHECK(json_str(login["data"], "state") == "pending");
}

TEST_CASE(
    "broker security: with a wrong password the agent says so in its log and keeps "
    "retrying") {
  BrokerWorld w;
  const auto password = w.password_file("not-the-password", "wrong.secret");
  const auto config = w.agent_config_for(
      w.broker.url(),
      "client_id: g2m-agent\nusername: agent\npassword_file: " + password.string() + "\n");
  Agent& agent = w.start_agent(config);

  // At least three attempts (0 s, 1 s, 3 s), each refused by the broker.
  const auto refusals = [&] {
    // Mosquitto names the client <unknown> when it refuses the CONNECT; the probes have the
    // right passwords, so every refusal is the agent's.
    return count_of(w.broker.log_text(), "disconnected, not authorised");
  };
  CHECK_MESSAGE(poll_until([&] { return refusals() >= 3; }, 15s),
                "refusals " << refusals() << "; broker log:\n"
                            << lines_with(w.broker.log_text(), "g2m-agent"));
  CHECK(agent.running());
  // The log names the cause (the broker refused the user name or password).
  CHECK_MESSAGE(poll_until([&] { return says_bad_credentials(mqtt_lines(agent)); }, 5s),
                "the log does not say the broker refused the user name or password:\n"
                    << mqtt_lines(agent));
  CHECK(agent.log_text().find("not-the-password") == std::string::npos);
  CHECK(w.display.messages("graph2mqtt/bridge/state").empty());

  // The config itself is valid: --check-config cannot know the password is wrong (no network).
  const auto check = w.check_config(config, "check-wrong-password");
  CHECK_MESSAGE(check.status == 0, check.output);
  CHECK(check.output.find("not-the-password") == std::string::npos);
}

TEST_CASE("broker security: the agent connects over TLS with the test CA") {
  BrokerWorld w(BrokerWorldOptions{.tls = true});
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  w.start_agent(w.agent_config_for(w.broker.tls_url(),
                                   "client_id: g2m-agent-tls\nusername: agent\npassword_file: " +
                                       password.string() + "\nca: " + w.pki.ca.string() + "\n"));
  w.wait_online();
  // It came in on the TLS listener.
  const std::string log = w.broker.log_text();
  const auto at = log.find(" as g2m-agent-tls ");
  REQUIRE_MESSAGE(at != std::string::npos, log);
  const auto connection = log.rfind("New connection from", at);
  REQUIRE(connection != std::string::npos);
  const auto line = log.substr(connection, log.find('\n', connection) - connection);
  CHECK_MESSAGE(
      line.find("on port " + std::to_string(w.broker.tls_port()) + ".") != std::string::npos, line);
  sign_in(w);
  w.display.wait_for_json("graph2mqtt/kitchen/graph/presence", is_object);
}

TEST_CASE(
    "broker security: a TLS broker whose certificate the CA does not sign: the agent logs "
    "a certificate error and keeps retrying") {
  BrokerWorld w(BrokerWorldOptions{.tls = true});
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  const auto config =
      w.agent_config_for(w.broker.tls_url(),
                         "client_id: g2m-agent-tls\nusername: agent\n"
                         "password_file: " +
                             password.string() + "\nca: " + w.pki.other_ca.string() + "\n");
  Agent& agent = w.start_agent(config);

  const bool retried =
      poll_until([&] { return connections_on_port(w.broker, w.broker.tls_port()) >= 3; }, 15s);
  CHECK_MESSAGE(retried, "broker log:\n" << w.broker.log_text());
  CHECK(agent.running());
  CHECK(w.display.messages("graph2mqtt/bridge/state").empty());
  // It names the cause: the broker's certificate could not be verified.
  CHECK_MESSAGE(
      poll_until([&] { return lower(mqtt_lines(agent)).find("certificate") != std::string::npos; },
                 5s),
      "the log does not say the broker's certificate could not be verified:\n"
          << mqtt_lines(agent));

  const auto check = w.check_config(config, "check-other-ca");
  CHECK_MESSAGE(check.status == 0, check.output);
}

TEST_CASE("broker security: mutual TLS: the agent presents its client certificate") {
  BrokerWorld w(BrokerWorldOptions{.secured = false, .tls = true, .require_client_cert = true});
  w.start_agent(
      w.agent_config_for(w.broker.tls_url(), "client_id: g2m-agent-mtls\nca: " + w.pki.ca.string() +
                                                 "\ncert: " + w.pki.client_cert.string() +
                                                 "\nkey: " + w.pki.client_key.string() + "\n"));
  w.wait_online();
  CHECK(lines_with(w.broker.log_text(), "as g2m-agent-mtls ").size() > 0);
  const auto reply = w.admin.request("status", R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "ok");
}

TEST_CASE(
    "broker security: mutual TLS without a client certificate: the agent's log says the "
    "TLS connection failed, and it keeps retrying") {
  BrokerWorld w(BrokerWorldOptions{.secured = false, .tls = true, .require_client_cert = true});
  Agent& agent = w.start_agent(w.agent_config_for(
      w.broker.tls_url(), "client_id: g2m-agent-nocert\nca: " + w.pki.ca.string() + "\n"));
  const bool retried =
      poll_until([&] { return connections_on_port(w.broker, w.broker.tls_port()) >= 3; }, 15s);
  CHECK_MESSAGE(retried, "broker log:\n" << w.broker.log_text());
  CHECK(agent.running());
  CHECK(w.display.messages("graph2mqtt/bridge/state").empty());
  CHECK_MESSAGE(poll_until([&] { return says_tls_failure(mqtt_lines(agent)); }, 5s),
                "the log does not say the TLS handshake failed:\n"
                    << mqtt_lines(agent));
}

TEST_CASE("broker security: the agent connects over WebSockets") {
  BrokerWorld w(BrokerWorldOptions{.websockets = true});
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  w.start_agent(w.agent_config_for(
      w.broker.ws_url(),
      "client_id: g2m-agent-ws\nusername: agent\npassword_file: " + password.string() + "\n"));
  w.wait_online();
  const std::string log = w.broker.log_text();
  CHECK_MESSAGE(log.find(" as g2m-agent-ws ") != std::string::npos, log);
  sign_in(w);
  w.display.wait_for_json("graph2mqtt/kitchen/graph/presence", is_object);
}

TEST_CASE("broker security: --check-config on broker security settings") {
  BrokerWorld w(BrokerWorldOptions{.tls = true});
  const auto password = w.password_file(kAgentPassword, "mqtt.secret");
  const std::string credentials = "username: agent\npassword_file: " + password.string() + "\n";
  const std::size_t connections_before = count_of(w.broker.log_text(), "New connection from");

  SUBCASE("valid: user name, password file, TLS with the CA and a client certificate") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.tls_url(), credentials + "ca: " + w.pki.ca.string() +
                                                   "\ncert: " + w.pki.client_cert.string() +
                                                   "\nkey: " + w.pki.client_key.string() + "\n"),
        "valid");
    CHECK_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("configuration is valid") != std::string::npos);
    CHECK(r.output.find(kAgentPassword) == std::string::npos);
  }
  SUBCASE("a password file that does not exist") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.url(), "username: agent\npassword_file: " +
                                               (w.tmp / "missing.secret").string() + "\n"),
        "missing-password-file");
    CHECK_MESSAGE(r.status == 2, r.output);
    CHECK_MESSAGE(r.output.find("config.yaml:5: mqtt.password_file") != std::string::npos,
                  r.output);
  }
  SUBCASE("password and password_file together") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.url(), credentials + "password: inline-secret-77\n"),
        "both-passwords");
    CHECK_MESSAGE(r.status == 2, r.output);
    CHECK_MESSAGE(r.output.find("mqtt.password") != std::string::npos, r.output);
    CHECK(r.output.find("inline-secret-77") == std::string::npos);
    CHECK(r.output.find(kAgentPassword) == std::string::npos);
  }
  SUBCASE("a client certificate without its key") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.tls_url(), "ca: " + w.pki.ca.string() +
                                                   "\ncert: " + w.pki.client_cert.string() + "\n"),
        "cert-without-key");
    CHECK_MESSAGE(r.status == 2, r.output);
    CHECK_MESSAGE(r.output.find("mqtt.cert") != std::string::npos, r.output);
  }
  SUBCASE("a CA file that does not exist") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.tls_url(), "ca: " + (w.tmp / "missing-ca.pem").string() + "\n"),
        "missing-ca");
    CHECK_MESSAGE(r.status == 2, r.output);
    CHECK_MESSAGE(r.output.find("mqtt.ca") != std::string::npos, r.output);
  }
  SUBCASE("a CA for a plain mqtt:// server is a warning, not an error") {
    const auto r = w.check_config(
        w.agent_config_for(w.broker.url(), credentials + "ca: " + w.pki.ca.string() + "\n"),
        "ca-on-plain");
    CHECK_MESSAGE(r.status == 0, r.output);
    CHECK_MESSAGE(r.output.find("warning") != std::string::npos, r.output);
    CHECK_MESSAGE(r.output.find("mqtt.ca") != std::string::npos, r.output);
  }
  // Validation never touches the network.
  CHECK(count_of(w.broker.log_text(), "New connection from") == connections_before);
}
