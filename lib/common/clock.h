#pragma once

#include <chrono>

namespace g2m {

using SteadyTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;
using Seconds = std::chrono::seconds;
using Millis = std::chrono::milliseconds;

// Time is injected: state machines read a Clock, tests drive a FakeClock. steady() is for
// timers, system() only for timestamps that leave the process (payloads, token files).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime steady() const = 0;
  virtual SystemTime system() const = 0;
};

class RealClock final : public Clock {
 public:
  SteadyTime steady() const override { return std::chrono::steady_clock::now(); }
  SystemTime system() const override { return std::chrono::system_clock::now(); }
};

}  // namespace g2m
