/* sim/png.c: a minimal PNG writer (no zlib: stored deflate blocks).
 *
 * PNG = signature, IHDR, IDAT (a zlib stream of stored blocks of at most
 * 65535 bytes over the filtered scanlines, filter 0), IEND; chunks carry a
 * CRC-32 and the zlib stream an Adler-32.
 */
#include "sim/png.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"

/* CRC-32 (ISO 3309) of a byte range, continuing from crc. */
static uint32_t png_crc(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* Store a big-endian 32-bit value. */
static void png_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Append one chunk (length, type, data, CRC over type+data) at out+*len. */
static void png_chunk(uint8_t *out, size_t *len, const char *type, const uint8_t *data, size_t n) {
  uint8_t *p = out + *len;
  png_be32(p, (uint32_t)n);
  memcpy(p + 4, type, 4);
  if (n) memcpy(p + 8, data, n);
  png_be32(p + 8 + n, png_crc(0, p + 4, n + 4));
  *len += 12 + n;
}

/* Write the image. */
int sim_write_png(const char *path, const uint8_t *rgb, int width, int height) {
  RDT_CHECK(width > 0 && height > 0, "%s: empty image", path);
  size_t row = (size_t)width * 3 + 1, raw_n = row * (size_t)height;
  uint8_t *raw = rdt_malloc(raw_n);
  for (int y = 0; y < height; y++) {
    raw[y * row] = 0;
    memcpy(raw + y * row + 1, rgb + (size_t)y * width * 3, (size_t)width * 3);
  }
  size_t nblocks = raw_n / 65535 + 1;
  size_t z_n = 2 + raw_n + 5 * nblocks + 4;
  uint8_t *z = rdt_malloc(z_n);
  size_t o = 0;
  z[o++] = 0x78, z[o++] = 0x01;
  uint32_t a = 1, b = 0;
  for (size_t at = 0; at < raw_n || at == 0;) {
    size_t n = raw_n - at > 65535 ? 65535 : raw_n - at;
    z[o++] = at + n == raw_n ? 1 : 0;
    z[o++] = (uint8_t)n, z[o++] = (uint8_t)(n >> 8);
    z[o++] = (uint8_t)~n, z[o++] = (uint8_t)(~n >> 8);
    memcpy(z + o, raw + at, n);
    for (size_t i = 0; i < n; i++) a = (a + raw[at + i]) % 65521, b = (b + a) % 65521;
    o += n, at += n;
    if (at == raw_n) break;
  }
  png_be32(z + o, (b << 16) | a);
  o += 4;
  uint8_t ihdr[13];
  png_be32(ihdr, (uint32_t)width), png_be32(ihdr + 4, (uint32_t)height);
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
  uint8_t *out = rdt_malloc(8 + 25 + 12 + o + 12);
  size_t len = 8;
  memcpy(out, "\x89PNG\r\n\x1a\n", 8);
  png_chunk(out, &len, "IHDR", ihdr, 13);
  png_chunk(out, &len, "IDAT", z, o);
  png_chunk(out, &len, "IEND", NULL, 0);
  int rc = rdt_write_file_atomic(path, out, len);
  free(out);
  free(z);
  free(raw);
  return rc;
}
