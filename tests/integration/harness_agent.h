// The real graph2mqtt agent (G2M_AGENT_BIN) with a config file, token folder and log of its own.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness_process.h"
#include "harness_util.h"

namespace g2m::test {

class Mosquitto;
class Simulator;

bool agent_available();  // G2M_AGENT_BIN exists (for doctest::skip)

// The pieces of config.yaml a test varies. The *_extra and `accounts` texts are YAML written at
// column 0; the harness indents them under their section.
struct AgentConfig {
  std::string mqtt_server{};  // mqtt://127.0.0.1:PORT
  std::string base_topic = "graph2mqtt";
  std::string mqtt_extra{};      // e.g. "version: 4\nclient_id: a2\n"
  std::string authority{};       // the simulator's https_url()
  std::string graph{};           // authority + "/v1.0"
  std::filesystem::path ca{};    // identity.ca: the test CA
  std::string identity_extra{};  // e.g. "timeout: 5s\n"
  std::string log_level = "debug";
  std::string accounts{};                // the accounts map, e.g. "kitchen:\n  client_id: ...\n"
  std::string extra{};                   // more top-level sections (homeassistant: ...)
  std::map<std::string, std::string> env{// added to the agent's environment
                                         {"NO_PROXY", "127.0.0.1,localhost,::1"},
                                         {"no_proxy", "127.0.0.1,localhost,::1"}};
};

// The standard config: this broker (plain listener), this simulator, the PKI's CA.
AgentConfig agent_config(const Mosquitto& broker, const Simulator& simulator, const Pki& pki,
                         std::string accounts, std::string base_topic = "graph2mqtt");

// config.yaml text, with storage.dir = storage_dir.
std::string to_yaml(const AgentConfig& config, const std::filesystem::path& storage_dir);

class Agent {
 public:
  // Writes DIR/config.yaml (storage.dir DIR/tokens) and starts `G2M_AGENT_BIN --config
  // DIR/config.yaml [extra_args]`. It does not wait for anything: wait for bridge/state.
  explicit Agent(AgentConfig config, std::vector<std::string> extra_args = {});
  ~Agent();  // SIGKILL if still running
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Starts again (after stop() or kill9()) with the same config file, tokens and log.
  void start();
  // SIGTERM and wait: the exit status (128 + signal if a signal ended it), or nullopt when it
  // did not exit within `timeout` (it is then SIGKILLed).
  std::optional<int> stop(std::chrono::milliseconds timeout = 5s);
  int kill9();
  bool running();
  Process& process() { return *process_; }

  // Rewrites config.yaml (same storage.dir) for the next start().
  void write_config(const AgentConfig& config);
  // A one-off command line with this config, e.g. run({"login", "kitchen"}) or
  // run({"--check-config"}): `G2M_AGENT_BIN args... --config DIR/config.yaml`, its own log.
  Process run(const std::vector<std::string>& args,
              const std::filesystem::path& stdin_path = "/dev/null") const;

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_path() const { return dir_ / "config.yaml"; }
  std::filesystem::path storage_dir() const { return dir_ / "tokens"; }
  std::filesystem::path log_path() const { return dir_ / "agent.log"; }
  std::string log_text() const;  // every run of this Agent, appended
  const AgentConfig& config() const { return config_; }

 private:
  TempDir dir_{"g2m-agent"};
  AgentConfig config_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<Process> process_;
};

}  // namespace g2m::test
