/*
 * main.c: a program that embeds a model compiled by gradc. It includes the
 * generated fit.h (named after linear.nn's `model fit` line), allocates the
 * parameters, gradient and workspace itself, and trains with its own loop:
 * plain gradient descent on 16 points, then prints the loss before and after
 * and a prediction. Nothing from gradc's runtime is linked: the generated
 * pair needs only libm.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fit.h"

int main(void)
{
    float params[FIT_PARAM_COUNT], grad[FIT_PARAM_COUNT];
    float x[16 * FIT_INPUT_SIZE], y[16 * FIT_TARGET_SIZE], out[FIT_OUTPUT_SIZE];
    void *work = malloc(FIT_WORKSPACE_BYTES);
    if (!work)
        return 1;
    /* the data: y = 0.4 + 0.3 x1 - 0.2 x2 on a 4 x 4 grid */
    for (int i = 0; i < 16; i++) {
        x[2 * i] = (float)(i % 4) / 3;
        x[2 * i + 1] = (float)(i / 4) / 3;
        y[i] = 0.4f + 0.3f * x[2 * i] - 0.2f * x[2 * i + 1];
    }
    fit_init(params, 1);
    size_t n = 16 < FIT_MAX_BATCH ? 16 : FIT_MAX_BATCH;
    float first = fit_loss(params, x, y, n, work), last = first;
    for (int step = 0; step < 2000; step++) {
        last = fit_loss_grad(params, x, y, n, grad, work);
        for (int i = 0; i < FIT_PARAM_COUNT; i++)
            params[i] -= 0.5f * grad[i];
    }
    fit_predict(params, x + 2 * 5, 1, out, work);
    printf("loss %.6f -> %.6f\n", first, last);
    printf("predict(%.3f, %.3f) = %.4f (target %.4f)\n", x[10], x[11], out[0], y[5]);
    free(work);
    return last < first / 10 ? 0 : 1;
}
