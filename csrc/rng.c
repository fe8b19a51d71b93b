/*
 * xoshiro256** (Blackman and Vigna), seeded through splitmix64: the PRNG behind
 * dropout masks. Fast, small state, and the same stream on every machine, so a
 * seed gives bit-identical masks.
 */
#include "fastmlp.h"

static inline uint64_t fm_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* fm_rng_seed: rng (written) from one 64-bit seed via splitmix64 */
void fm_rng_seed(fm_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        rng->s[i] = z ^ (z >> 31);
    }
}

/* fm_rng_next: the next 64 random bits; rng read and advanced */
uint64_t fm_rng_next(fm_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = fm_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fm_rotl(s[3], 45);
    return result;
}
