/*
 * deploy_main.c: a deployed predictor: the pair written by
 * `gradc -c --predict-only --embed-params PARAMS` and nothing else. Reads CSV
 * rows (a header line first) from standard input, standardizes them when
 * the params were trained so, and prints one line of outputs per row,
 * as the training executable's predict does. Build with -DMODEL=seed
 * -include seed.h and the size macros (see tests/e2e/deploy.sh);
 * -DSTATE_COUNT for a model with state (batch_norm's running statistics,
 * embedded too: MODEL_init_state).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))

int main(void)
{
    static REAL params[PARAM_COUNT], x[MAX_BATCH * INPUT_SIZE], out[MAX_BATCH * OUTPUT_SIZE];
    static double work[WORKSPACE_BYTES / sizeof(double) + 1];
    static char line[1 << 16];
    FN(init)(params, 0);
#ifdef STATE_COUNT
    static REAL state[STATE_COUNT];
    FN(init_state)(state);
#endif
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (;;) {
        size_t n = 0;
        while (n < MAX_BATCH && fgets(line, sizeof line, stdin)) {
            char *p = line;
            for (int j = 0; j < INPUT_SIZE; j++) {
                x[n * INPUT_SIZE + j] = (REAL)strtod(p, &p);
                if (*p == ',')
                    p++;
            }
            n++;
        }
        if (!n)
            break;
#ifdef STANDARDIZE
        FN(standardize)(x, n);
#endif
#ifdef STATE_COUNT
        FN(predict)(params, state, x, n, out, work);
#else
        FN(predict)(params, x, n, out, work);
#endif
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < OUTPUT_SIZE; j++)
                printf("%.9g%c", (double)out[i * OUTPUT_SIZE + j], j + 1 < OUTPUT_SIZE ? ' ' : '\n');
    }
    return 0;
}
