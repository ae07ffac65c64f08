#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace g2m {

// A token, device code or password. It cannot be streamed, formatted or converted to a
// string by accident: the only way to the bytes is reveal(), which is easy to grep for.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  void clear() {
    // Overwrite before release so the bytes do not linger in freed memory.
    for (auto& c : value_) c = '\0';
    value_.clear();
  }

  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "[redacted]"; }

 private:
  std::string value_;
};

}  // namespace g2m
