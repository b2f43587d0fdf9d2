/*
 * reference.c: the forward values of the convolution family against a
 * direct implementation of their definitions, in double.
 *
 * Built by tests/gradcheck.sh against the pair `gradc -c` writes for a model
 * named gc whose output is one op applied to the input x[C,H,W]:
 *
 *   -DOP=1  conv2d(x, out=O, k=K, stride=S, pad=...), params W then b;
 *           -DPAD=-1 for 'same', else the zeros on each side (0: valid)
 *   -DOP=2  maxpool2d(x * s, S), s a param initialised to ones
 *   -DOP=3  avgpool2d(x * s, S)
 *
 * The reference is written from the definitions, not from conv.c: output
 * size ceil(H/S) for 'same' with the padding split evenly and the odd zero
 * after (TensorFlow; PyTorch for stride 1), floor((H + 2p - K)/S) + 1
 * otherwise; cross-correlation (no kernel flip) as in PyTorch and
 * TensorFlow; pooling windows of S x S at stride S, the rest dropped. Prints
 * the worst absolute difference over a few batches; exit 1 above 1e-12.
 */
#include "gc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 0x9876543;

static double uni(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}

static int out_dim(int in, int *before)
{
#if OP == 1 && PAD < 0
    int o = (in + S - 1) / S, total = (o - 1) * S + K - in;
    *before = total > 0 ? total / 2 : 0;
    return o;
#elif OP == 1
    *before = PAD;
    return (in + 2 * PAD - K) / S + 1;
#else
    *before = 0;
    return in / S;
#endif
}

int main(void)
{
    static double params[GC_PARAM_COUNT + 1], x[GC_MAX_BATCH * GC_INPUT_SIZE + 1];
    static double out[GC_MAX_BATCH * GC_OUTPUT_SIZE + 1];
    static unsigned char work[GC_WORKSPACE_BYTES + 64];
    int pt, pl;
    int Ho = out_dim(H, &pt), Wo = out_dim(W, &pl);
#if OP == 1
    const int OC = O;
#else
    const int OC = C;
#endif
    if ((size_t)OC * Ho * Wo != GC_OUTPUT_SIZE) {
        printf("FAIL: output size %d, the reference says %d x %d x %d\n", GC_OUTPUT_SIZE, OC, Ho, Wo);
        return 1;
    }
    double worst = 0;
    for (int t = 0; t < 3; t++) {
        size_t n = t == 0 ? 1 : t == 1 ? 3 : GC_MAX_BATCH;
        gc_init(params, 7 + (uint64_t)t);
#if OP == 1
        for (size_t i = 0; i < GC_PARAM_COUNT; i++)
            params[i] = 2 * uni() - 1;
#endif
        for (size_t i = 0; i < n * GC_INPUT_SIZE; i++)
            x[i] = 2 * uni() - 1;
        gc_predict(params, x, n, out, work);
        for (size_t b = 0; b < n; b++)
            for (int o = 0; o < OC; o++)
                for (int oy = 0; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++) {
                        double ref;
#if OP == 1
                        const double *Wt = params, *bias = params + O * C * K * K;
                        ref = bias[o];
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < K; ky++)
                                for (int kx = 0; kx < K; kx++) {
                                    int iy = oy * S + ky - pt, ix = ox * S + kx - pl;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                        continue;
                                    ref += Wt[((o * C + c) * K + ky) * K + kx] *
                                           x[b * GC_INPUT_SIZE + (c * H + iy) * W + ix];
                                }
#else
                        ref = OP == 2 ? -INFINITY : 0;
                        for (int dy = 0; dy < S; dy++)
                            for (int dx = 0; dx < S; dx++) {
                                double v = x[b * GC_INPUT_SIZE + (o * H + oy * S + dy) * W + ox * S + dx];
                                ref = OP == 2 ? fmax(ref, v) : ref + v / (S * S);
                            }
#endif
                        double got = out[b * GC_OUTPUT_SIZE + (o * Ho + oy) * Wo + ox];
                        double d = fabs(got - ref);
                        if (!(d <= worst))
                            worst = d;
                    }
    }
    printf("worst absolute difference from the reference %.3g\n", worst);
    return worst <= 1e-12 ? 0 : 1;
}
