#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <optional>

#include "http/http.h"

namespace g2m {

// The requests waiting for a transfer slot: the most urgent first, first come first served
// within a priority (HttpPriority).
template <class Id>
class RequestQueue {
 public:
  void push(Id id, HttpPriority priority) {
    lanes_[static_cast<std::size_t>(priority)].push_back(id);
  }
  // The next one to start, or nullopt when none waits.
  std::optional<Id> pop() {
    for (auto& lane : lanes_) {
      if (!lane.empty()) {
        const Id id = lane.front();
        lane.pop_front();
        return id;
      }
    }
    return std::nullopt;
  }
  bool empty() const {
    for (const auto& lane : lanes_) {
      if (!lane.empty()) return false;
    }
    return true;
  }
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& lane : lanes_) n += lane.size();
    return n;
  }

 private:
  std::array<std::deque<Id>, 3> lanes_;  // indexed by HttpPriority
};

}  // namespace g2m
