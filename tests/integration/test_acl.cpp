// The example broker setup (config/mosquitto.conf, a drop-in for Debian's broker, and
// config/mosquitto.acl) implements the threat model of SECURITY.md: each display reads only its
// own account, only trusted clients send commands, nobody anonymous, and nobody can take the
// agent's client id. The drop-in is tested the way a gateway runs it: on top of Debian's stock
// /etc/mosquitto/mosquitto.conf (as the mosquitto package ships it), with only the paths moved
// into a temporary folder and the ports moved to free ones.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scenario.h"

using namespace g2m::test;

namespace {

ProbeOptions as(const std::string& url, const std::string& user, const std::string& password) {
  ProbeOptions o;
  o.url = url;
  o.username = user;
  o.password = password;
  return o;
}

// Replaces the first line of `text` that starts with `key` by `line`; fails the test when there
// is none (the shipped file changed: the test must learn the new layout).
std::string replace_line(const std::string& text, const std::string& key, const std::string& line) {
  std::istringstream in(text);
  std::string out, current;
  bool found = false;
  while (std::getline(in, current)) {
    if (!found && current.rfind(key, 0) == 0) {
      out += line + "\n";
      found = true;
    } else {
      out += current + "\n";
    }
  }
  if (!found) fail("no line starting with `" + key + "` in:\n" + text);
  return out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (text.find(from) == std::string::npos) fail("`" + from + "` not found in:\n" + text);
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Debian's Mosquitto as a gateway runs it: DIR/mosquitto.conf is Debian's stock main file with
// pid_file, persistence_location, log_dest and include_dir moved into DIR; DIR/conf.d holds the
// drop-in with its password file, ACL and http_dir moved into DIR and its two listeners on free
// loopback ports. Run as root, Mosquitto drops to the `mosquitto` user as on a gateway, so DIR
// belongs to that user.
class DebianMosquitto {
 public:
  // `lan_listener`: with the drop-in's commented plain-MQTT listener for small displays turned on.
  DebianMosquitto(const std::filesystem::path& dir, const std::map<std::string, std::string>& users,
                  const std::string& extra_acl, bool lan_listener = false)
      : dir_(dir),
        port_(free_port()),
        ws_port_(free_port()),
        lan_port_(lan_listener ? free_port() : 0) {
    std::filesystem::create_directories(dir_ / "conf.d");
    std::filesystem::create_directories(dir_ / "data");
    std::filesystem::create_directories(dir_ / "web");
    write_file(dir_ / "web" / "index.html", "<title>graph2mqtt display</title>\n");

    const std::string stock = read_file("/etc/mosquitto/mosquitto.conf");
    REQUIRE_MESSAGE(!stock.empty(), "Debian's /etc/mosquitto/mosquitto.conf is missing");
    std::string main = replace_line(stock, "pid_file ", "pid_file " + (dir_ / "pid").string());
    main = replace_line(main, "persistence_location ",
                        "persistence_location " + (dir_ / "data").string() + "/");
    main = replace_line(main, "log_dest file ", "log_dest file " + log_path().string());
    main = replace_line(main, "include_dir ", "include_dir " + (dir_ / "conf.d").string());
    write_file(dir_ / "mosquitto.conf", main);

    std::string dropin = read_file(std::string(G2M_SOURCE_DIR) + "/config/mosquitto.conf");
    dropin = replace_all(dropin, "/etc/mosquitto/graph2mqtt.", (dir_ / "graph2mqtt.").string());
    dropin = replace_all(dropin, "/usr/share/graph2mqtt/web", (dir_ / "web").string());
    dropin = replace_line(dropin, "listener 1883 127.0.0.1",
                          "listener " + std::to_string(port_) + " 127.0.0.1");
    dropin = replace_line(dropin, "listener 9001",
                          "listener " + std::to_string(ws_port_) + " 127.0.0.1");
    if (lan_listener) {
      dropin = replace_line(dropin, "# listener 1884",
                            "listener " + std::to_string(lan_port_) + " 127.0.0.1");
      dropin = replace_line(dropin, "# protocol mqtt", "protocol mqtt");
      dropin =
          replace_line(dropin, "# use_username_as_clientid true", "use_username_as_clientid true");
    }
    write_file(dir_ / "conf.d" / "graph2mqtt.conf", dropin);

    write_file(dir_ / "graph2mqtt.acl",
               read_file(std::string(G2M_SOURCE_DIR) + "/config/mosquitto.acl") + extra_acl);
    bool first = true;
    for (const auto& [user, password] : users) {
      std::vector<std::string> argv{"/usr/bin/mosquitto_passwd", "-b"};
      if (first) argv.emplace_back("-c");
      argv.insert(argv.end(), {(dir_ / "graph2mqtt.passwd").string(), user, password});
      Process tool(argv, dir_ / "mosquitto_passwd.log");
      if (tool.wait_exit(10s) != 0) fail("mosquitto_passwd failed:\n" + tool.log_text());
      first = false;
    }
    ::chmod((dir_ / "graph2mqtt.passwd").c_str(), 0640);
    if (::geteuid() == 0) give_to_mosquitto_user();

    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/mosquitto", "-c", (dir_ / "mosquitto.conf").string()},
        dir_ / "stderr.log");
    const bool up = poll_until(
        [&] {
          return !process_->running() || (port_open(port_) && port_open(ws_port_) &&
                                          (lan_port_ == 0 || port_open(lan_port_)));
        },
        10s);
    if (!up || !process_->running()) {
      fail("Mosquitto did not start with Debian's main file and the drop-in:\n" + main + "\n" +
           dropin + "\nlog:\n" + read_file(log_path()) + process_->log_text());
    }
  }

  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
  std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(ws_port_); }
  std::string lan_url() const { return "mqtt://127.0.0.1:" + std::to_string(lan_port_); }
  int ws_port() const { return ws_port_; }
  std::filesystem::path log_path() const { return dir_ / "mosquitto.log"; }
  bool running() { return process_->running(); }

 private:
  void give_to_mosquitto_user() {
    const passwd* pw = ::getpwnam("mosquitto");
    REQUIRE_MESSAGE(pw != nullptr, "the mosquitto package's user is missing");
    // The temporary folder above DIR is 0700: let the mosquitto user through, not in.
    ::chmod(dir_.parent_path().c_str(), 0711);
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) {
      REQUIRE(::chown(entry.path().c_str(), pw->pw_uid, pw->pw_gid) == 0);
    }
    REQUIRE(::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) == 0);
  }

  std::filesystem::path dir_;
  int port_;
  int ws_port_;
  int lan_port_;
  std::unique_ptr<Process> process_;
};

// GET `path` from 127.0.0.1:port over plain HTTP/1.0: the whole answer (status line, headers,
// body), "" when nothing answers.
std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n = 0;
      while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
        answer.append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return answer;
}

std::string office_account() {
  return std::string("office:\n") + "  client_id: " + kClientId + "\n" + "  scopes: [User.Read]\n" +
         "  resources:\n" + "    me: { path: \"/me?$select=displayName,mail\", every: 1h }\n";
}

bool online(const rapidjson::Value& v) {
  return json_str(v, "state") == "online";
}
bool signed_out(const rapidjson::Value& v) {
  return json_str(v, "state") == "signed_out";
}

// The agent as a gateway configures it for the drop-in: user `agent`, its password in a file.
AgentConfig gateway_agent(const TempDir& tmp, const DebianMosquitto& broker, const Simulator& sim,
                          const Pki& pki, const std::string& mqtt_extra = "") {
  write_file(tmp / "agent.secret", "agent-pw\n");
  AgentConfig config;
  config.mqtt_server = broker.url();
  config.authority = sim.https_url();
  config.graph = sim.https_url() + "/v1.0";
  config.ca = pki.ca;
  config.accounts = kitchen_account() + office_account();
  config.mqtt_extra =
      "username: agent\npassword_file: " + (tmp / "agent.secret").string() + "\n" + mqtt_extra;
  return config;
}

}  // namespace

// ctest -L broker: the shipped broker setup.
TEST_SUITE_BEGIN("broker");

TEST_CASE("acl: the drop-in runs on Debian's stock mosquitto.conf and binds client ids to users") {
  TempDir tmp("g2m-acl-debian");
  const Pki pki = make_pki(tmp / "pki");
  // The test probes' own marker topics (sync, fetch_retained), for every user.
  DebianMosquitto broker(tmp / "broker",
                         {{"agent", "agent-pw"},
                          {"display-kitchen", "kitchen-pw"},
                          {"homeassistant", "ha-pw"},
                          {"admin", "admin-pw"}},
                         "\npattern readwrite g2m-test/#\n");
  Simulator sim(pki, {"--interval", "1"});

  Agent agent(gateway_agent(tmp, broker, sim, pki, "client_id: graph2mqtt-gateway\n"));

  MqttProbe admin(as(broker.url(), "admin", "admin-pw"));
  // The kitchen display on the websockets listener, as a TV browser connects.
  MqttProbe display(as(broker.ws_url(), "display-kitchen", "kitchen-pw"));
  admin.wait_for_json("graph2mqtt/office/auth/state", signed_out);
  display.wait_for_json("graph2mqtt/bridge/state", online);
  display.wait_for_json("graph2mqtt/kitchen/auth/state", signed_out);

  SUBCASE("Mosquitto started on Debian's main file and serves the web display (http_dir)") {
    CHECK(broker.running());
    const auto page = http_get(broker.ws_port(), "/index.html");
    CHECK_MESSAGE(page.find(" 200 OK") != std::string::npos, page);
    CHECK(page.find("<title>graph2mqtt display</title>") != std::string::npos);
  }

  SUBCASE("a display reads its own account only") {
    // Retained on both accounts: the display subscribed to # gets only what the ACL allows.
    display.sync();
    CHECK_FALSE(display.messages("graph2mqtt/kitchen/#").empty());
    CHECK(display.messages("graph2mqtt/office/#").empty());
    CHECK(display.messages("graph2mqtt/bridge/info").empty());
    // (Not fetch_retained: its second client would sign in as the same user, and with client
    // ids bound to user names it would disconnect this one.)
  }

  SUBCASE("a display may ask for a sign-in, not sign out, cancel or refresh") {
    for (const char* action : {"logout", "cancel", "refresh", "status", "graph"}) {
      Outgoing request;
      request.topic = std::string("graph2mqtt/bridge/request/") + action;
      request.payload = R"({"account":"kitchen"})";
      const auto refused = display.try_publish(request);
      REQUIRE_MESSAGE(refused.has_value(), action);
      CHECK(refused->find("Not authorized") != std::string::npos);
    }
    // Its login request, with its own MQTT 5 response topic: the reply comes back there, the
    // code appears on its account's topic; the shared reply topic (every account's codes) stays
    // closed to it.
    const auto since = display.mark();
    const auto reply = display.request_v5("login", R"({"account":"kitchen"})",
                                          "graph2mqtt/bridge/response/login/display-kitchen", "c1");
    CHECK(json_str(reply.json(), "status") == "ok");
    display.wait_for_json(
        "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        since);
    admin.wait_for("graph2mqtt/bridge/response/login", {}, 10s);
    // It may finish a browser sign-in too (here there is none: an error reply, to it alone).
    const auto complete =
        display.request_v5("complete", R"({"account":"kitchen","url":"?code=x&state=y"})",
                           "graph2mqtt/bridge/response/complete/display-kitchen", "c2");
    CHECK(json_str(complete.json(), "status") == "error");
    display.sync();
    CHECK(display.messages("graph2mqtt/bridge/response/login").empty());
    CHECK(display.messages("graph2mqtt/bridge/response/complete").empty());
  }

  SUBCASE("Home Assistant sends its buttons' requests (login, logout) and nothing else") {
    MqttProbe ha(as(broker.url(), "homeassistant", "ha-pw"));
    ha.wait_for_json("graph2mqtt/office/auth/state", signed_out);
    CHECK(json_str(ha.request("logout", R"({"account":"office"})"), "status") == "ok");
    for (const char* action : {"cancel", "refresh", "status"}) {
      Outgoing request;
      request.topic = std::string("graph2mqtt/bridge/request/") + action;
      request.payload = R"({"account":"office"})";
      const auto refused = ha.try_publish(request);
      REQUIRE_MESSAGE(refused.has_value(), action);
      CHECK(refused->find("Not authorized") != std::string::npos);
    }
    Outgoing rogue;
    rogue.topic = "graph2mqtt/office/auth/state";
    rogue.payload = R"({"state":"signed_in"})";
    rogue.retain = true;
    CHECK(ha.try_publish(rogue).has_value());
  }

  SUBCASE("nobody takes the agent's client id: the broker replaces it with the user name") {
    // (Not as admin: with client ids bound to user names, a second admin would end the first.)
    MqttProbe agent_state(as(broker.url(), "homeassistant", "ha-pw"));
    agent_state.wait_for_json("graph2mqtt/bridge/state", online);
    const auto since = agent_state.mark();
    // Both listeners, each with the agent's configured client id and with its user name (the
    // id the broker gave it).
    for (const auto& url : {broker.url(), broker.ws_url()}) {
      for (const char* id : {"agent", "graph2mqtt-gateway"}) {
        ProbeOptions impostor = as(url, "display-kitchen", "kitchen-pw");
        impostor.client_id = id;
        CHECK_FALSE(try_connect(impostor).has_value());
      }
    }
    // Had the agent been disconnected, the broker would have published its will (offline).
    agent_state.sync();
    for (const auto& m : agent_state.messages("graph2mqtt/bridge/state")) {
      if (m.index >= since)
        CHECK_MESSAGE(m.payload.find("offline") == std::string::npos, m.payload);
    }
    CHECK(agent.running());
    const auto log = read_file(broker.log_path());
    CHECK(log.find("as agent") != std::string::npos);
    // (The impostors did end the kitchen display's own connection: it has their user name.)
    CHECK(log.find("Client agent already connected") == std::string::npos);
    CHECK(log.find("Client graph2mqtt-gateway already connected") == std::string::npos);
  }

  SUBCASE("a wrong password and an anonymous client are refused") {
    ProbeOptions anonymous;
    anonymous.url = broker.url();
    auto refused = try_connect(anonymous);
    REQUIRE(refused.has_value());
    CHECK(refused->find("Not authorized") != std::string::npos);
    refused = try_connect(as(broker.ws_url(), "display-kitchen", "wrong"));
    REQUIRE(refused.has_value());
  }
}

TEST_CASE(
    "acl: the drop-in's optional plain-MQTT listener for small displays works with the same "
    "users and ACL") {
  TempDir tmp("g2m-acl-lan");
  const Pki pki = make_pki(tmp / "pki");
  DebianMosquitto broker(tmp / "broker", {{"agent", "agent-pw"}, {"display-kitchen", "kitchen-pw"}},
                         "\npattern readwrite g2m-test/#\n", /*lan_listener=*/true);
  Simulator sim(pki, {"--interval", "1"});
  Agent agent(gateway_agent(tmp, broker, sim, pki));

  // An ESP32 panel speaks plain MQTT, not WebSockets.
  MqttProbe display(as(broker.lan_url(), "display-kitchen", "kitchen-pw"));
  display.wait_for_json("graph2mqtt/kitchen/auth/state", signed_out);
  display.sync();
  CHECK(display.messages("graph2mqtt/office/#").empty());
  Outgoing logout;
  logout.topic = "graph2mqtt/bridge/request/logout";
  logout.payload = R"({"account":"kitchen"})";
  CHECK(display.try_publish(logout).has_value());  // refused, as on the other listeners
  ProbeOptions anonymous;
  anonymous.url = broker.lan_url();
  CHECK(try_connect(anonymous).has_value());
}

TEST_CASE("acl: the shipped ACL keeps each display to its own account and strangers out") {
  TempDir tmp("g2m-acl");
  const Pki pki = make_pki(tmp / "pki");
  MosquittoOptions options;
  options.users = {{"agent", "agent-pw"}, {"display-kitchen", "display-pw"}, {"admin", "admin-pw"}};
  options.acl = read_file(std::string(G2M_SOURCE_DIR) + "/config/mosquitto.acl");
  REQUIRE_FALSE(options.acl.empty());
  // The test probes' own marker topics (sync, fetch_retained), for every user.
  options.acl += "\npattern readwrite g2m-test/#\n";
  Mosquitto broker(options);
  Simulator sim(pki, {"--interval", "1"});

  write_file(tmp / "agent.secret", "agent-pw\n");
  AgentConfig config = agent_config(broker, sim, pki, kitchen_account());
  config.mqtt_extra = "username: agent\npassword_file: " + (tmp / "agent.secret").string() + "\n";
  Agent agent(config);

  MqttProbe display(as(broker.url(), "display-kitchen", "display-pw"));
  MqttProbe admin(as(broker.url(), "admin", "admin-pw"));
  display.wait_for_json("graph2mqtt/bridge/state", online);
  display.wait_for_json("graph2mqtt/kitchen/auth/state", signed_out);

  SUBCASE("a display cannot sign its account out") {
    Outgoing logout;
    logout.topic = "graph2mqtt/bridge/request/logout";
    logout.payload = R"({"account":"kitchen"})";
    const auto refused = display.try_publish(logout);
    REQUIRE(refused.has_value());
    CHECK(refused->find("Not authorized") != std::string::npos);
  }

  SUBCASE("an admin starts a sign-in; the display sees the code but not the shared replies") {
    const auto since = display.mark();
    auto reply = admin.request("login", R"({"account":"kitchen"})");
    CHECK(json_str(reply, "status") == "ok");
    display.wait_for_json(
        "graph2mqtt/kitchen/auth/code", [](const rapidjson::Value& v) { return v.IsObject(); }, 10s,
        since);
    display.sync();
    CHECK(display.messages("graph2mqtt/bridge/response/#").empty());
    CHECK(sim.counters().devicecode == 1);
  }

  SUBCASE("an unauthenticated client is refused") {
    ProbeOptions anonymous;
    anonymous.url = broker.url();
    const auto refused = try_connect(anonymous);
    REQUIRE(refused.has_value());
    CHECK(refused->find("Not authorized") != std::string::npos);
  }
}

TEST_SUITE_END();
