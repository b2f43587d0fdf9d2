/*
 * main.c: a program that embeds a model compiled by gradc. It includes the
 * generated tiny.h, allocates the parameters, gradient and workspace itself,
 * and trains with its own loop: plain gradient descent on 16 points, then
 * prints the loss before and after and a prediction. Nothing from gradc's
 * runtime is linked: the generated pair needs only libm.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tiny.h"

int main(void)
{
    float params[TINY_PARAM_COUNT], grad[TINY_PARAM_COUNT];
    float x[16 * TINY_INPUT_SIZE], y[16 * TINY_TARGET_SIZE], out[TINY_OUTPUT_SIZE];
    void *work = malloc(TINY_WORKSPACE_BYTES);
    if (!work)
        return 1;
    /* the data: y = 0.4 + 0.3 x1 - 0.2 x2 on a 4 x 4 grid */
    for (int i = 0; i < 16; i++) {
        x[2 * i] = (float)(i % 4) / 3;
        x[2 * i + 1] = (float)(i / 4) / 3;
        y[i] = 0.4f + 0.3f * x[2 * i] - 0.2f * x[2 * i + 1];
    }
    tiny_init(params, 1);
    size_t n = 16 < TINY_MAX_BATCH ? 16 : TINY_MAX_BATCH;
    float first = tiny_loss(params, x, y, n, work), last = first;
    for (int step = 0; step < 2000; step++) {
        last = tiny_loss_grad(params, x, y, n, grad, work);
        for (int i = 0; i < TINY_PARAM_COUNT; i++)
            params[i] -= 0.5f * grad[i];
    }
    tiny_predict(params, x + 2 * 5, 1, out, work);
    printf("loss %.6f -> %.6f\n", first, last);
    printf("predict(%.3f, %.3f) = %.4f (target %.4f)\n", x[10], x[11], out[0], y[5]);
    free(work);
    return last < first / 10 ? 0 : 1;
}
