#include "app/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>

namespace g2m {

ServiceNotifier::ServiceNotifier(EventLoop& loop) : watchdog_(loop) {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    // Ping at half the watchdog period, as sd_watchdog_enabled(3) recommends.
    interval_ = std::chrono::duration_cast<Millis>(std::chrono::microseconds(usec / 2));
  }
}

void ServiceNotifier::ready() {
  sd_notify(0, "READY=1");
  if (interval_.count() > 0) ping();
}

void ServiceNotifier::reloading() {
  sd_notify(0, "RELOADING=1");
}

void ServiceNotifier::stopping() {
  watchdog_.cancel();
  sd_notify(0, "STOPPING=1");
}

void ServiceNotifier::status(const std::string& text) {
  sd_notify(0, ("STATUS=" + text).c_str());
}

void ServiceNotifier::ping() {
  sd_notify(0, "WATCHDOG=1");
  watchdog_.start_after(interval_, [this] { ping(); });
}

}  // namespace g2m
