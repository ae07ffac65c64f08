#pragma once

#include <string>
#include <string_view>

namespace g2m {

// A PNG of a QR code of `text` (docs/mqtt-api.md "Topics the agent publishes" `auth/qr`): black
// modules on white, a 4-module quiet zone, at least 4 pixels per module, so a phone camera reads it
// off a small panel. Empty when the text is too long for any QR code version (about 2,300 bytes).
std::string qr_png(std::string_view text);

}  // namespace g2m
