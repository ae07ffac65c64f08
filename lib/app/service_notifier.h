#pragma once

#include <string>

#include "loop/event_loop.h"

namespace g2m {

// Tells systemd (Type=notify) that the agent is ready, alive and stopping. The watchdog ping
// comes from an event-loop timer, so a stuck loop stops the pings and systemd restarts it.
// Does nothing when not started by systemd (no NOTIFY_SOCKET).
class ServiceNotifier {
 public:
  explicit ServiceNotifier(EventLoop& loop);
  void ready();
  void reloading();
  void stopping();
  void status(const std::string& text);

 private:
  void ping();
  Timer watchdog_;
  Millis interval_{0};
};

}  // namespace g2m
