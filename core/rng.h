/* core/rng.h: a seeded, serialisable random generator (xoshiro256**).
 *
 * rdt_rng_seed(r, seed, stream) gives independent reproducible streams for
 * (seed, worker) pairs.  The state is a plain struct, so checkpoints save it
 * byte for byte for exact resume.
 */
#ifndef RDT_RNG_H
#define RDT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; int has_spare; double spare; } rdt_rng;

void rdt_rng_seed(rdt_rng *r, uint64_t seed, uint64_t stream);
uint64_t rdt_rng_u64(rdt_rng *r);
uint32_t rdt_rng_u32(rdt_rng *r);
double rdt_rng_uniform(rdt_rng *r);              /* [0, 1) with 53 bits */
uint64_t rdt_rng_below(rdt_rng *r, uint64_t n);  /* uniform in [0, n), unbiased */
double rdt_rng_normal(rdt_rng *r);               /* standard normal */

/* FNV-1a 64 over n bytes, continuing from h (start: RDT_FNV_OFFSET): a
 * hash for digests and cache keys, not a random stream. */
#define RDT_FNV_OFFSET 0xcbf29ce484222325ull
static inline uint64_t rdt_fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *c = (const unsigned char *)data;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

#endif
