/* sim/png.h: a minimal PNG writer (no zlib: stored deflate blocks). */
#ifndef RDT_SIM_PNG_H
#define RDT_SIM_PNG_H

#include <stdint.h>

/* Write width x height RGB pixels, row 0 first, as an 8-bit RGB PNG.  0 or -1. */
int sim_write_png(const char *path, const uint8_t *rgb, int width, int height);

#endif
