// auth/qr (docs/mqtt-api.md "Topics the agent publishes"): the PNG reads back, with zbarimg (Debian
// zbar-tools), as exactly the address it was made of; black on white, a 4-module quiet zone, at
// least 4 pixels per module.
#include <doctest/doctest.h>
#include <png.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "qr/qr_png.h"

namespace {

// zbarimg's reading of a PNG, or "" when it finds no code.
std::string zbar_read(const std::string& png) {
  char path[] = "/tmp/g2m-qr-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << png;
  std::string out;
  if (FILE* p = popen(
          ("zbarimg --quiet --raw -Sdisable -Sqrcode.enable " + std::string(path) + " 2>/dev/null")
              .c_str(),
          "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(path);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

struct Grey {
  unsigned width = 0, height = 0;
  std::vector<unsigned char> pixels;
  bool black(unsigned x, unsigned y) const { return pixels[y * width + x] < 128; }
};

Grey decode(const std::string& png) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_memory(&image, png.data(), png.size()) != 0);
  image.format = PNG_FORMAT_GRAY;
  Grey g;
  g.width = image.width;
  g.height = image.height;
  g.pixels.resize(PNG_IMAGE_SIZE(image));
  REQUIRE(png_image_finish_read(&image, nullptr, g.pixels.data(), 0, nullptr) != 0);
  return g;
}

}  // namespace

TEST_CASE("qr png: a verification URI reads back exactly") {
  const std::string uri = "https://microsoft.com/devicelogin";
  const std::string png = g2m::qr_png(uri);
  REQUIRE(png.size() > 8);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(zbar_read(png) == uri);
}

TEST_CASE("qr png: a long browser sign-in URL reads back exactly") {
  std::string url =
      "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?client_id="
      "00000000-0000-0000-0000-000000000001&response_type=code&redirect_uri=https%3A%2F%2Flogin."
      "microsoftonline.com%2Fcommon%2Foauth2%2Fnativeclient&response_mode=query&scope=openid%20"
      "profile%20offline_access%20User.Read%20Presence.Read%20Calendars.Read&state=";
  url += std::string(43, 'S') + "&code_challenge=" + std::string(43, 'C') +
         "&code_challenge_method=S256";
  CHECK(zbar_read(g2m::qr_png(url)) == url);
}

TEST_CASE("qr png: black modules on white, a 4-module quiet zone, at least 4 pixels a module") {
  const Grey g = decode(g2m::qr_png("https://example.com/device?code=ABCD-EFGH"));
  REQUIRE(g.width == g.height);
  // The top-left finder pattern starts the first dark run: its offset is the quiet zone, and
  // its first row is 7 dark modules.
  unsigned first = 0;
  while (first < g.width && !g.black(first, first)) ++first;
  REQUIRE(first < g.width);
  unsigned run = 0;
  while (first + run < g.width && g.black(first + run, first)) ++run;
  REQUIRE(run % 7 == 0);
  const unsigned scale = run / 7;
  CHECK(scale >= 4);
  CHECK(first == 4 * scale);
  // The quiet zone is white all round, and the image is whole modules.
  CHECK(g.width % scale == 0);
  bool border_white = true;
  for (unsigned i = 0; i < g.width; ++i) {
    for (unsigned d = 0; d < 4 * scale; ++d) {
      border_white = border_white && !g.black(i, d) && !g.black(d, i) &&
                     !g.black(i, g.height - 1 - d) && !g.black(g.width - 1 - d, i);
    }
  }
  CHECK(border_white);
  // Only pure black and pure white.
  bool two_tones = true;
  for (unsigned char p : g.pixels) two_tones = two_tones && (p == 0 || p == 255);
  CHECK(two_tones);
}

TEST_CASE("qr png: text too long for any QR code gives no image") {
  CHECK(g2m::qr_png(std::string(8000, 'x')).empty());
}
