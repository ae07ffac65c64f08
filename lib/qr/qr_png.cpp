#include "qr/qr_png.h"

#include <png.h>
#include <qrencode.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace g2m {

namespace {

constexpr int kQuietZone = 4;  // modules of white around the symbol (ISO/IEC 18004 §6.3.8)
constexpr int kMinScale = 4;   // pixels per module
constexpr int kTargetPixels = 320;

struct QrFree {
  void operator()(QRcode* code) const { QRcode_free(code); }
};

void append_to_string(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}

void no_flush(png_structp) {}

// libpng reports errors by longjmp: this frame holds no C++ object that a jump would skip.
bool write_png(png_structp png, png_infop info, const QRcode* code, int scale, png_bytep row,
               std::size_t row_bytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int modules = code->width + 2 * kQuietZone;
  const auto side = static_cast<png_uint_32>(modules * scale);
  // 1-bit greyscale: 0 is black, 1 is white.
  png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  // Each module row is `scale` identical pixel rows: build it once (a fifth of a sign-in's CPU
  // went to QR codes when it was built per pixel row).
  for (int my = -kQuietZone; my < code->width + kQuietZone; ++my) {
    std::memset(row, 0xff, row_bytes);
    if (my >= 0 && my < code->width) {
      for (png_uint_32 x = 0; x < side; ++x) {
        const int mx = static_cast<int>(x) / scale - kQuietZone;
        if (mx < 0 || mx >= code->width) continue;
        // libqrencode: bit 0 of each module byte is 1 for a dark module.
        if ((code->data[my * code->width + mx] & 1) != 0) {
          row[x / 8] = static_cast<png_byte>(row[x / 8] & ~(0x80u >> (x % 8)));
        }
      }
    }
    for (int copy = 0; copy < scale; ++copy) png_write_row(png, row);
  }
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

std::string qr_png(std::string_view text) {
  // Medium error correction survives a scuffed screen; a long sign-in URL falls back to low.
  std::unique_ptr<QRcode, QrFree> code;
  for (QRecLevel level : {QR_ECLEVEL_M, QR_ECLEVEL_L}) {
    code.reset(QRcode_encodeData(static_cast<int>(text.size()),
                                 reinterpret_cast<const unsigned char*>(text.data()), 0, level));
    if (code) break;
  }
  if (!code) return {};
  const int modules = code->width + 2 * kQuietZone;
  const int scale = std::max(kMinScale, kTargetPixels / modules);
  std::vector<png_byte> row((static_cast<std::size_t>(modules * scale) + 7) / 8);

  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (png == nullptr) return {};
  png_infop info = png_create_info_struct(png);
  if (info != nullptr) {
    png_set_write_fn(png, &out, append_to_string, no_flush);
    if (!write_png(png, info, code.get(), scale, row.data(), row.size())) out.clear();
  } else {
    out.clear();
  }
  png_destroy_write_struct(&png, info != nullptr ? &info : nullptr);
  return out;
}

}  // namespace g2m
