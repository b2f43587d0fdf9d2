/*
 * rt_rng.c: the runtime's pseudo-random numbers, for shuffling the examples
 * every epoch and holding out a validation set.
 *
 * xoshiro256** 1.0 (David Blackman and Sebastiano Vigna, 2018, public domain,
 * https://prng.di.unimi.it/), its 256-bit state filled from the seed by
 * splitmix64 as its authors recommend. Only uint64_t arithmetic, so a seed
 * gives the same sequence on every machine. Bounded numbers use rejection
 * instead of a plain modulo, so every permutation is equally likely.
 */
#include "rt_internal.h"

uint64_t grt_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void grt_rng_seed(grt_rng *r, uint64_t seed)
{
    int i;
    for (i = 0; i < 4; i++)
        r->s[i] = grt_splitmix64(&seed);
    /* splitmix64 is a bijection of its counter, so four zeros cannot come
     * out; the check keeps the invariant obvious. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t grt_rng_next(grt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t grt_rng_below(grt_rng *r, uint64_t n)
{
    /* Values below 2^64 mod n would make the low residues more likely. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = grt_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

void grt_shuffle(grt_rng *r, size_t *idx, size_t n)
{
    size_t i;
    for (i = n; i > 1; i--) {
        size_t j = (size_t)grt_rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
