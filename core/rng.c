/* core/rng.c: xoshiro256** seeded through splitmix64, one stream per (seed, stream). */
#include <math.h>
#include <string.h>
#include "core/rng.h"

/* splitmix64: advances *x and returns a well-mixed 64-bit value. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rdt_rng_seed(rdt_rng *r, uint64_t seed, uint64_t stream) {
  /* Hash the seed, then fold the stream in through a second splitmix chain, so
   * nearby (seed, stream) pairs give unrelated states. */
  uint64_t x = seed;
  uint64_t y = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ull + 0x2545f4914f6cdd1dull);
  memset(r, 0, sizeof *r);
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&y);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;   /* the all-zero state is a fixed point */
}

uint64_t rdt_rng_u64(rdt_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

uint32_t rdt_rng_u32(rdt_rng *r) { return (uint32_t)(rdt_rng_u64(r) >> 32); }

double rdt_rng_uniform(rdt_rng *r) { return (double)(rdt_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t rdt_rng_below(rdt_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t threshold = (0 - n) % n;   /* 2^64 mod n: reject the short final block */
  for (;;) {
    uint64_t x = rdt_rng_u64(r);
    if (x >= threshold) return x % n;
  }
}

double rdt_rng_normal(rdt_rng *r) {
  /* Box-Muller; the second value of each pair is kept for the next call. */
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = 1.0 - rdt_rng_uniform(r), u2 = rdt_rng_uniform(r);   /* u1 in (0, 1] */
  double rad = sqrt(-2.0 * log(u1)), theta = 2.0 * M_PI * u2;
  r->spare = rad * sin(theta);
  r->has_spare = 1;
  return rad * cos(theta);
}
