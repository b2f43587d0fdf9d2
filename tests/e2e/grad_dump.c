/*
 * grad_dump.c: prints the loss and gradient of a generated model on a fixed
 * pseudo-random batch, so that two builds of one model (vectorized and
 * --scalar, float and double) can be compared. Build with
 *   -DMODEL=tiny -include tiny.h   and   -DREAL=float (or double)
 * and, for a model with state (batch_norm), -DSTATE_COUNT=TINY_STATE_COUNT.
 */
#include <stdio.h>
#include <stdlib.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define UP2(a, b) a##b
#ifndef REAL
#define REAL float
#endif

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 7;
    int nclass = argc > 2 ? atoi(argv[2]) : 0;
    static REAL params[PARAM_COUNT], grad[PARAM_COUNT], x[MAX_BATCH * INPUT_SIZE + 1],
        y[MAX_BATCH * TARGET_SIZE + 1], out[MAX_BATCH * OUTPUT_SIZE + 1];
    static double work[WORKSPACE_BYTES / sizeof(double) + 1];
#ifdef STATE_COUNT
    static REAL state[STATE_COUNT];
    FN(init_state)(state);
#define ST state,
#else
#define ST
#endif
    if (n > MAX_BATCH)
        n = MAX_BATCH;
    unsigned long long s = 12345;
    FN(init)(params, 7);
    for (size_t i = 0; i < (size_t)PARAM_COUNT; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        params[i] += (REAL)(((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.2);
    }
    for (size_t i = 0; i < n * INPUT_SIZE; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (REAL)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (size_t i = 0; i < n * TARGET_SIZE; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        y[i] = (REAL)(nclass ? (double)(int)(u * nclass) : u);
    }
    REAL l = FN(loss_grad)(params, ST x, y, n, grad, work);
    printf("%.9g\n", (double)l);
    for (size_t i = 0; i < (size_t)PARAM_COUNT; i++)
        printf("%.9g\n", (double)grad[i]);
    FN(predict)(params, ST x, n, out, work);
    for (size_t i = 0; i < n * OUTPUT_SIZE; i++)
        printf("%.9g\n", (double)out[i]);
    return 0;
}
