// Fuzzes parse_config(): the whole of the input is the YAML text of a config file.
//
// The file "lives" in a scratch folder holding a few files a config may name (relative paths
// resolve against it), so the password_file/ca/cert/key branches see readable, empty and
// unreadable files as well as missing ones.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "config/config.h"
#include "fuzz_support.h"

namespace {

std::filesystem::path scratch;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

bool under(const std::string& path, const char* root) {
  const std::size_t n = std::strlen(root);
  return path.compare(0, n, root) == 0 && (path.size() == n || path[n] == '/');
}

}  // namespace

// parse_config() reads the files a config names with fopen(). A fuzzed `password_file:
// /dev/zero` (or a FIFO, or /proc/kmsg) would make that read endless: an operator's typo, not
// what this target is about, and a hang would hide every real finding. These wrappers (linked
// with -Wl,--wrap=fopen) let reads of such files fail with EACCES; libFuzzer's own writes pass.
extern "C" {
std::FILE* __real_fopen(const char* path, const char* mode);
std::FILE* __real_fopen64(const char* path, const char* mode);

static bool refused(const char* path, const char* mode) {
  if (path == nullptr || mode == nullptr || mode[0] != 'r') return false;
  std::error_code ec;
  const std::string real = std::filesystem::weakly_canonical(path, ec).string();
  if (ec || under(real, "/dev") || under(real, "/proc") || under(real, "/sys")) return true;
  struct stat st {};
  return ::stat(real.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

std::FILE* __wrap_fopen(const char* path, const char* mode) {
  if (refused(path, mode)) {
    errno = EACCES;
    return nullptr;
  }
  return __real_fopen(path, mode);
}

std::FILE* __wrap_fopen64(const char* path, const char* mode) {
  if (refused(path, mode)) {
    errno = EACCES;
    return nullptr;
  }
  return __real_fopen64(path, mode);
}

int LLVMFuzzerInitialize(int*, char***) {
  scratch = g2m::fuzz::scratch_dir("g2m-fuzz-config");
  write_file(scratch / "mqtt.secret", "hunter2\n");
  write_file(scratch / "client.secret", "s3cr3t\r\n");
  write_file(scratch / "empty.secret", "");
  write_file(scratch / "ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  std::filesystem::create_directory(scratch / "folder");
  return 0;
}
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using g2m::fuzz::require;
  const std::string text(g2m::fuzz::as_text(data, size));
  try {
    const g2m::Config cfg = g2m::parse_config(text, scratch / "config.yaml");
    // What the rest of the agent relies on once a config was accepted (config.h,
    // config/config.yaml).
    require(!cfg.accounts.empty(), "an accepted config has at least one account");
    require(cfg.mqtt.port >= 1 && cfg.mqtt.port <= 65535, "the MQTT port is 1..65535");
    require(cfg.mqtt.version == 4 || cfg.mqtt.version == 5, "the MQTT version is 4 or 5");
    require(cfg.storage_dir.is_absolute(), "storage.dir is made absolute");
    for (const auto& account : cfg.accounts) {
      require(cfg.find_account(account.name) == &account, "account names are unique");
      for (const auto& prefix : account.graph_allow) {
        require(!prefix.empty() && prefix.front() == '/', "graph_allow entries start with /");
      }
      for (const auto& r : account.resources) {
        require(r.max_pages >= 1 && r.max_pages <= 50, "max_pages is 1..50");
        require(r.every >= std::chrono::seconds(5), "every is at least 5s");
        require(!r.path.empty() && r.path.front() == '/', "a resource path starts with /");
      }
    }
  } catch (const g2m::ConfigError& e) {
    // The expected outcome for most inputs. Every error names the file it came from.
    require(!e.errors().empty(), "a ConfigError carries at least one error");
    for (const auto& line : e.errors()) {
      require(line.rfind((scratch / "config.yaml").string(), 0) == 0,
              "every config error starts with the file name");
    }
  }
  // Any other exception escapes on purpose: load_config() promises ConfigError only.
  return 0;
}
