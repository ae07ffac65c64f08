#include "harness_agent.h"

#include <cstdlib>
#include <sstream>

#include "harness_mosquitto.h"
#include "harness_simulator.h"

namespace g2m::test {

namespace {

std::string indented(std::string_view yaml) {
  std::string out;
  std::istringstream lines{std::string(yaml)};
  for (std::string line; std::getline(lines, line);) {
    out += line.empty() ? "\n" : "  " + line + "\n";
  }
  return out;
}

}  // namespace

bool agent_available() {
  return std::filesystem::exists(G2M_AGENT_BIN);
}

AgentConfig agent_config(const Mosquitto& broker, const Simulator& simulator, const Pki& pki,
                         std::string accounts, std::string base_topic) {
  AgentConfig config;
  config.mqtt_server = broker.url();
  config.base_topic = std::move(base_topic);
  config.authority = simulator.https_url();
  config.graph = simulator.https_url() + "/v1.0";
  config.ca = pki.ca;
  config.accounts = std::move(accounts);
  return config;
}

std::string to_yaml(const AgentConfig& config, const std::filesystem::path& storage_dir) {
  std::ostringstream yaml;
  yaml << "mqtt:\n"
       << "  server: " << config.mqtt_server << "\n"
       << "  base_topic: " << config.base_topic << "\n"
       << indented(config.mqtt_extra) << "identity:\n"
       << "  authority: " << config.authority << "\n"
       << "  graph: " << config.graph << "\n";
  if (!config.ca.empty()) yaml << "  ca: " << config.ca.string() << "\n";
  yaml << indented(config.identity_extra) << "storage:\n"
       << "  dir: " << storage_dir.string() << "\n"
       << "log:\n"
       << "  level: " << config.log_level << "\n"
       << config.extra << (config.extra.empty() || config.extra.ends_with('\n') ? "" : "\n")
       << "accounts:\n"
       << indented(config.accounts);
  return yaml.str();
}

Agent::Agent(AgentConfig config, std::vector<std::string> extra_args)
    : config_(std::move(config)), extra_args_(std::move(extra_args)) {
  write_config(config_);
  start();
}

Agent::~Agent() = default;  // the Process kills it

void Agent::write_config(const AgentConfig& config) {
  config_ = config;
  write_file(config_path(), to_yaml(config_, storage_dir()));
}

void Agent::start() {
  if (!agent_available()) fail(std::string("the agent is not built: ") + G2M_AGENT_BIN);
  if (process_ && process_->running()) fail("Agent::start: the agent is already running");
  std::vector<std::string> argv;
  // G2M_AGENT_WRAPPER runs the agent under a tool, e.g. "valgrind --error-exitcode=99 ...": the
  // memcheck test uses it. Words are separated by spaces.
  if (const char* wrapper = std::getenv("G2M_AGENT_WRAPPER"); wrapper && *wrapper) {
    std::istringstream words(wrapper);
    for (std::string w; words >> w;) argv.push_back(w);
  }
  argv.insert(argv.end(), {G2M_AGENT_BIN, "--config", config_path().string()});
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<Process>(argv, log_path(), config_.env);
}

std::optional<int> Agent::stop(std::chrono::milliseconds timeout) {
  // Under a wrapper such as valgrind a clean exit takes longer.
  if (const char* wrapper = std::getenv("G2M_AGENT_WRAPPER"); wrapper && *wrapper) timeout *= 6;
  process_->terminate(SIGTERM);
  auto status = process_->wait_exit(timeout);
  if (!status) process_->kill9();
  return status;
}

int Agent::kill9() {
  return process_->kill9();
}

bool Agent::running() {
  return process_ && process_->running();
}

Process Agent::run(const std::vector<std::string>& args,
                   const std::filesystem::path& stdin_path) const {
  if (!agent_available()) fail(std::string("the agent is not built: ") + G2M_AGENT_BIN);
  std::vector<std::string> argv{G2M_AGENT_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--config", config_path().string()});
  return Process(argv, dir_ / (unique_id("cli") + ".log"), config_.env, stdin_path);
}

std::string Agent::log_text() const {
  return read_file(log_path());
}

}  // namespace g2m::test
