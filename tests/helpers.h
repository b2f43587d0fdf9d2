/*
 * helpers.h: what the compiler's unit tests share: compile a model given as
 * text through the real pipeline, with its diagnostics captured in a string.
 */
#ifndef GRADC_TEST_HELPERS_H
#define GRADC_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradc.h"

typedef struct Compiled {
    Arena *arena;   /* everything the compilation made */
    Diag d;         /* its diagnostics context */
    Model *m;       /* NULL on errors */
    char *diags;    /* what was reported */
    size_t diags_len;
    FILE *out;      /* the memstream behind diags */
} Compiled;

/* Parses and checks src (as file "t.nn"); with grad, also differentiates and
 * simplifies at -O level. */
static inline Compiled *compile_src(const char *src, int grad, int level)
{
    Compiled *c = calloc(1, sizeof *c);
    c->arena = arena_new();
    diag_init(&c->d, "t.nn", src, strlen(src));
    c->out = open_memstream(&c->diags, &c->diags_len);
    c->d.out = c->out;
    Ast *ast = parse_source(c->arena, &c->d);
    c->m = sema_check(c->arena, &c->d, ast, "t");
    if (c->m && c->d.errors) { /* syntax errors: sema checked what parsed */
        graph_release(&c->m->g);
        c->m = NULL;
    }
    if (c->m && grad) {
        simplify(c->m, level, NULL);
        grad_build(c->m);
        simplify(c->m, level, NULL);
    }
    fflush(c->out);
    return c;
}

static inline void compiled_free(Compiled *c)
{
    fclose(c->out);
    free(c->diags);
    if (c->m)
        graph_release(&c->m->g);
    diag_release(&c->d);
    arena_free(c->arena);
    free(c);
}

/* The first line of the diagnostics ("t.nn:3:5: error: ..."). */
static inline const char *first_diag(Compiled *c, char *buf, size_t n)
{
    const char *s = c->diags ? c->diags : "";
    size_t k = strcspn(s, "\n");
    if (k >= n)
        k = n - 1;
    memcpy(buf, s, k);
    buf[k] = 0;
    return buf;
}

/* Counts the nodes of op reachable from r. */
static inline int count_op(Graph *g, Ref r, Op op, unsigned char *seen)
{
    if (!r || seen[r])
        return 0;
    seen[r] = 1;
    int n = N(g, r)->op == op;
    for (int i = 0; i < op_nin[N(g, r)->op]; i++)
        n += count_op(g, N(g, r)->in[i], op, seen);
    return n;
}

/* How many op nodes the loss and the gradients reach. */
static inline int ops_in_model(Model *m, Op op)
{
    unsigned char *seen = calloc((size_t)m->g.n, 1);
    int n = count_op(&m->g, m->loss, op, seen);
    for (int i = 0; m->grads && i < m->nparams; i++)
        n += count_op(&m->g, m->grads[i], op, seen);
    free(seen);
    return n;
}

static const char *const SEED_SRC =
    "# seed.nn: the three-layer classifier of the backpropagation walk-through.\n"
    "model seed\n"
    "input  x[3]\n"
    "target y[1]\n"
    "param W1[16, 3] init he\n"
    "param b1[16]\n"
    "param W2[16, 16] init he\n"
    "param b2[16]\n"
    "param W3[1, 16] init xavier\n"
    "param b3[1]\n"
    "z1   = W1 @ x + b1\n"
    "a1   = relu(z1)\n"
    "a2   = relu(W2 @ a1 + b2)\n"
    "yhat = sigmoid(W3 @ a2 + b3)\n"
    "minimize bce(yhat, y)\n"
    "output yhat\n"
    "train {\n"
    "  optimizer sgd(lr = 0.1)\n"
    "  batch 32\n"
    "  epochs 100\n"
    "  shuffle on\n"
    "  seed 42\n"
    "}\n";

#endif
