#pragma once

#include <string.h>  // explicit_bzero

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace g2m {

// A token, device code or password. It cannot be streamed, formatted or converted to a
// string by accident: the only way to the bytes is reveal(), which is easy to grep for.
// Move-only, so a token is never duplicated by accident (each copy would be one more place in
// memory holding it); its bytes are wiped when it is cleared, replaced or destroyed.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  // Moving a std::string hands over its heap buffer; a short (SSO) string is copied into the
  // new object, so the moved-from one is wiped too.
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.clear(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      clear();
      value_ = std::move(other.value_);
      other.clear();
    }
    return *this;
  }
  ~Secret() { clear(); }

  // An explicit duplicate, for the rare place that must keep two (greppable, like reveal()).
  Secret copy() const { return Secret(value_); }

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  void clear() noexcept {
    // Overwrite before release so the bytes do not linger in freed memory; explicit_bzero is
    // never optimised away. The whole capacity: a shorter value may have followed a longer one.
    value_.resize(value_.capacity());  // never reallocates: the bytes are all ours to write
    if (!value_.empty()) explicit_bzero(value_.data(), value_.size());
    value_.clear();
  }

  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "[redacted]"; }

 private:
  std::string value_;
};

// A secret that copies of a configuration share (a Config is copied on reload and into each
// client): one Secret, wiped when the last holder lets go. `if (s)` and `s->reveal()` read as
// with std::optional<Secret>.
using SharedSecret = std::shared_ptr<const Secret>;
inline SharedSecret share(std::optional<Secret> secret) {
  if (!secret) return nullptr;
  return std::make_shared<const Secret>(std::move(*secret));
}

}  // namespace g2m
