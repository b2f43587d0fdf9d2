/*
 * rt_text.c: models trained on text. A text model has one input of token
 * ids, `int(V)[T]`, and one target of a class per position, `class(V)[T]`;
 * its output is T rows of V logits. On text (`train --text FILE`) an
 * example is a window of T + 1 characters at a random offset: the first T
 * are the input, the last T the target (the next character at every
 * position). Training is counted in optimizer steps, each of `batch`
 * windows drawn afresh (with replacement, as nanoGPT's get_batch draws
 * them), so there are no epochs.
 *
 * Characters are bytes. With V = 256 a byte is its own id; with a smaller V
 * the vocabulary is the sorted set of the bytes of the training file (an
 * error if there are more than V), and it is saved with the params (the
 * VOCB section) so that eval and sample decode the same way.
 *
 * A validation text (the last `validate` fraction of the file) and `eval
 * --text` are scored over the non-overlapping windows at offsets 0, T, 2T,
 * ...: their mean loss is the mean loss per character (the model's loss is
 * the mean over its T positions), in nats; bits per character divide it by
 * ln 2.
 *
 * `sample` runs predict autoregressively: the model takes T ids, so the
 * last min(len, T) ids of the text so far go at the start of the window,
 * the rest is padding (id 0), and the next id is drawn from the logits of
 * the last real position; a causal model's earlier positions never see the
 * padding after them.
 *
 * In a data-parallel run every rank reads the whole file and draws its own
 * windows from a generator seeded by the seed and its rank; the gradients
 * are averaged over every rank's windows, as rows are in rt_train.c.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int grt_text_model(const grt_model *m, size_t *T, int *V)
{
    int v;
    if (m->ninputs != 1 || m->ntargets != 1 || m->inputs[0].vocab <= 0)
        return 0;
    v = m->inputs[0].vocab;
    if (m->targets[0].nclasses != v || m->targets[0].size != m->inputs[0].size ||
        m->output_size < m->inputs[0].size * (size_t)v)
        return 0;
    if (T)
        *T = m->inputs[0].size;
    if (V)
        *V = v;
    return 1;
}

/* A byte as a message shows it: 'a', '\n', '\xe2'. */
static void show_byte(char *dst, size_t cap, unsigned char b)
{
    if (b == '\n')
        snprintf(dst, cap, "'\\n'");
    else if (b == '\t')
        snprintf(dst, cap, "'\\t'");
    else if (b == '\r')
        snprintf(dst, cap, "'\\r'");
    else if (b == '\'')
        snprintf(dst, cap, "\"'\"");
    else if (b >= 0x20 && b < 0x7f)
        snprintf(dst, cap, "'%c'", b);
    else
        snprintf(dst, cap, "'\\x%02x'", b);
}

int grt_vocab_build(const unsigned char *b, size_t n, int V, const char *name, grt_stats *s,
                    grt_err *e)
{
    unsigned char seen[256];
    int c, k = 0;
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++)
        seen[b[i]] = 1;
    for (c = 0; c < 256; c++)
        if (seen[c])
            s->vocab[k++] = (unsigned char)c;
    if (k > V)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                        "%s: error: %d distinct characters (bytes), but the model's vocabulary "
                        "holds %d (its input is int(%d)); compile it with a vocabulary of at "
                        "least %d, or 256 to read bytes",
                        name, k, V, V, k);
    s->nvocab = k;
    return 0;
}

int grt_text_encode(const unsigned char *b, size_t n, const grt_stats *s, int V,
                    const char *name, const char *vname, unsigned char *ids, grt_err *e)
{
    int map[256], c;
    size_t i, line = 1, col = 1;
    for (c = 0; c < 256; c++)
        map[c] = s->nvocab ? -1 : c < V ? c : -1;
    for (c = 0; c < s->nvocab; c++)
        map[s->vocab[c]] = c;
    for (i = 0; i < n; i++) {
        if (map[b[i]] < 0) {
            char ch[16];
            show_byte(ch, sizeof ch, b[i]);
            if (!s->nvocab)
                return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                                "%s:%zu:%zu: error: byte %d (%s) is not a token id of the model, "
                                "an integer in 0..%d",
                                name, line, col, b[i], ch, V - 1);
            return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                            "%s:%zu:%zu: error: character %s is not in the vocabulary of %s "
                            "(the %d characters of the training text)",
                            name, line, col, ch, vname, s->nvocab);
        }
        ids[i] = (unsigned char)map[b[i]];
        if (b[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    return 0;
}

void grt_text_free(grt_text *t)
{
    free(t->ids);
    memset(t, 0, sizeof *t);
}

int grt_text_long_enough(const grt_text *t, size_t T, const char *what, grt_err *e)
{
    if (t->n >= T + 1)
        return 0;
    return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                    "%s: error: %s of %zu character%s is shorter than one window of the model "
                    "(T + 1 = %zu characters)",
                    t->name, what, t->n, t->n == 1 ? "" : "s", T + 1);
}

int grt_text_load(const char *path, const grt_model *m, grt_stats *s, int build,
                  const char *vname, grt_text *t, grt_err *e)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    size_t T;
    int V, status;

    memset(t, 0, sizeof *t);
    t->name = path;
    if (!grt_text_model(m, &T, &V))
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_USAGE,
                        "%s: error: --text needs a model whose input is int(V)[T] and whose "
                        "target is class(V)[T] (model '%s' is not one)",
                        path, m->name);
    if (V > 256)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_USAGE,
                        "%s: error: --text reads characters (bytes), a vocabulary of at most "
                        "256; model '%s' has int(%d)",
                        path, m->name, V);
    if ((status = grt_read_file(path, &buf, &n, e))) {
        free(buf);
        return status;
    }
    if (n == 0) {
        free(buf);
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY, "%s: error: empty file, no text", path);
    }
    if (build && V < 256 && s->nvocab == 0 && (status = grt_vocab_build(buf, n, V, path, s, e))) {
        free(buf);
        return status;
    }
    if (V < 256 && s->nvocab == 0) {
        free(buf);
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                        "%s: error: no vocabulary (a VOCB section): it was not written by "
                        "train --text, and model '%s' (int(%d)) needs one to read text",
                        vname, m->name, V);
    }
    t->ids = grt_xmalloc(n, 1);
    t->n = n;
    status = grt_text_encode(buf, n, s, V, path, vname, t->ids, e);
    free(buf);
    if (status)
        grt_text_free(t);
    return status;
}

int grt_text_split(grt_text *t, grt_text *v, double fraction, size_t T, grt_err *e)
{
    size_t k = (size_t)floor(fraction * (double)t->n + 0.5);
    int status;
    memset(v, 0, sizeof *v);
    v->name = t->name;
    if (k == 0)
        k = 1;
    v->n = k;
    v->ids = grt_xmalloc(k, 1);
    memcpy(v->ids, t->ids + t->n - k, k);
    t->n -= k;
    if ((status = grt_text_long_enough(v, T, "the validation text (validate)", e)) ||
        (status = grt_text_long_enough(t, T, "the training text (what validate leaves)", e)))
        return status;
    return 0;
}

/* Window w at offset `at` of ids into row k of the chunk buffers: x the
 * first T ids, y the next T (targets: the id after each position). */
static void window(grt_ctx *c, const unsigned char *ids, size_t at, size_t k, size_t T)
{
    size_t j;
    for (j = 0; j < T; j++) {
        c->x[k * T + j] = (grt_real)ids[at + j];
        c->y[k * T + j] = (grt_real)ids[at + j + 1];
    }
}

double grt_text_loss(grt_ctx *c, const grt_real *params, const grt_text *t, size_t *windows)
{
    const grt_model *m = c->m;
    size_t T = m->input_size, W = t->n > T ? (t->n - 1) / T : 0, done, n, k;
    double sum = 0;
    for (done = 0; done < W; done += n) {
        n = W - done < m->max_batch ? W - done : m->max_batch;
        for (k = 0; k < n; k++)
            window(c, t->ids, (done + k) * T, k, T);
        sum += (double)n * grt_chunk_loss(c, params, n);
    }
    if (windows)
        *windows = W;
    return W ? sum / (double)W : NAN;
}

/* "the gradient of 'W' is NaN (element [2])" or the update's, for value k. */
static void bad_value(char *dst, size_t cap, const grt_model *m, const char *what,
                      const grt_real *v, size_t k)
{
    const char *name;
    char index[128];
    grt_param_at(m, k, &name, index, sizeof index);
    snprintf(dst, cap, "%s '%s' %s (element %s)", what, name, isnan(v[k]) ? "NaN" : "infinite",
             index);
}

static size_t first_nonfinite(const grt_real *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return n;
}

/* The generator of rank r's windows: the seed itself on rank 0 (so one
 * rank draws what a single process draws), a splitmix64 step of it and the
 * rank elsewhere. */
static void rank_rng(grt_rng *r, uint64_t seed, int rank)
{
    uint64_t s = seed ^ ((uint64_t)rank * UINT64_C(0x9e3779b97f4a7c15));
    grt_rng_seed(r, rank ? grt_splitmix64(&s) : seed);
}

int grt_train_text(grt_ctx *c, grt_real *params, const grt_text *train, const grt_text *valid,
                   const grt_run *run, grt_trained *res, grt_err *e)
{
    const grt_model *m = c->m;
    const grt_train_config *cfg = &run->cfg;
    grt_state *st = run->state;
    size_t T = m->input_size, np = m->param_count, B, k, i;
    long S = cfg->steps > 0 ? cfg->steps : 1000, start = 0, last, step, every;
    int rank = grt_comm_rank(), P = grt_comm_size(), status = 0;
    int has_valid = valid && valid->n > T;
    grt_real *grad = grt_xaligned(np * sizeof(grt_real));
    grt_real *prev = grt_xaligned(np * sizeof(grt_real));
    double *acc = c->acc, sum = 0, t0 = grt_now(), tp = t0;
    long since = 0;
    FILE *pf = run->progress ? run->progress : stderr;
    grt_optimizer opt;
    grt_rng rng;

    memset(res, 0, sizeof *res);
    res->acc = NAN;
    res->has_valid = has_valid;
    B = cfg->batch > 0 ? (size_t)cfg->batch : m->max_batch;
    grt_opt_init(&opt, cfg, np, m->maximize);
    grt_opt_flags(&opt, m);
    grt_opt_threads(&opt, m);
    rank_rng(&rng, cfg->seed, rank);
    if (st && st->valid) {
        start = st->step;
        if (rank == 0)
            rng = st->rng;
        else
            rank_rng(&rng, st->rng.s[0] ^ st->rng.s[1] ^ st->rng.s[2] ^ st->rng.s[3], rank);
        if (st->opt_kind == opt.kind) {
            opt.t = st->t;
            if (opt.m && st->m)
                memcpy(opt.m, st->m, np * sizeof(grt_real));
            if (opt.v && st->v)
                memcpy(opt.v, st->v, np * sizeof(grt_real));
        }
    }
    last = run->stop_after > 0 && run->stop_after < S ? run->stop_after : S;
    /* a progress line about every tenth of the run, and at its end */
    every = S >= 10 ? S / 10 : 1;
    res->epochs = (int)(start < INT32_MAX ? start : INT32_MAX);

    for (step = start; step < last; step++) {
        double lr = grt_sched_lr(cfg, cfg->lr, (int)(step < INT32_MAX ? step : INT32_MAX),
                                 (int)(S < INT32_MAX ? S : INT32_MAX));
        double l;
        char what[700] = "";
        size_t done, n;

        /* B windows of this rank, at random offsets, chunk by chunk */
        if (B <= m->max_batch && P == 1) { /* one chunk of one process: straight into grad */
            for (k = 0; k < B; k++)
                window(c, train->ids, (size_t)grt_rng_below(&rng, train->n - T), k, T);
            l = grt_chunk_grad(c, params, B, grad);
        } else {
            memset(acc, 0, (np + 1) * sizeof(double));
            for (done = 0; done < B; done += n) {
                n = B - done < m->max_batch ? B - done : m->max_batch;
                for (k = 0; k < n; k++)
                    window(c, train->ids, (size_t)grt_rng_below(&rng, train->n - T), k, T);
                acc[np] += (double)n * grt_chunk_grad(c, params, n, c->cgrad);
                for (i = 0; i < np; i++)
                    acc[i] += (double)n * c->cgrad[i];
            }
            grt_comm_sum(acc, np + 1);
            for (i = 0; i < np; i++)
                grad[i] = (grt_real)(acc[i] / ((double)B * P));
            l = acc[np] / ((double)B * P);
        }
        grt_opt_ignore_frozen(&opt, grad);
        grt_ctx_share_state(c);
        if (!isfinite(l))
            snprintf(what, sizeof what, "the loss is %s", isnan(l) ? "NaN" : "infinite");
        else if ((k = first_nonfinite(grad, np)) < np)
            bad_value(what, sizeof what, m, "the gradient of", grad, k);
        else {
            memcpy(prev, params, np * sizeof(grt_real));
            grt_opt_step(&opt, params, grad, lr);
            if ((k = first_nonfinite(params, np)) < np) {
                bad_value(what, sizeof what, m, "the update made", params, k);
                memcpy(params, prev, np * sizeof(grt_real));
            }
        }
        if (what[0]) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_DIVERGED,
                              "%s: error: training diverged at step %ld: %s; try a smaller "
                              "learning rate (--lr)",
                              m->name, step + 1, what);
            goto out;
        }
        sum += l;
        since++;
        res->epochs = (int)(step + 1 < INT32_MAX ? step + 1 : INT32_MAX);
        res->ran++;
        if ((step + 1) % every == 0 || step + 1 == last) {
            double now = grt_now(), vl = NAN;
            grt_hrow r;
            res->loss = sum / (double)since;
            if (has_valid) {
                vl = grt_text_loss(c, params, valid, NULL);
                res->valid.loss = vl;
            }
            if (!run->quiet) {
                /* step 200/2000  loss 2.1034  val_loss 2.2051  lr 9.76e-04  41.2k tok/s  3.1s */
                char f[32], rt[32], tt[32];
                grt_figure(f, sizeof f, res->loss);
                fprintf(pf, "step %ld/%ld  loss %s", step + 1, S, f);
                if (has_valid) {
                    grt_figure(f, sizeof f, vl);
                    fprintf(pf, "  val_loss %s", f);
                }
                grt_rate(rt, sizeof rt,
                         now > tp ? (double)since * (double)B * (double)P * (double)T / (now - tp)
                                  : 0.0);
                grt_seconds(tt, sizeof tt, now - t0);
                fprintf(pf, "  lr %.3g  %s tok/s  %s\n", lr, rt, tt);
                fflush(pf);
            }
            r.x = (double)(step + 1);
            r.loss = res->loss;
            r.acc = NAN;
            r.val_loss = vl;
            r.val_acc = NAN;
            r.lr = lr;
            r.seconds = now - t0;
            if (run->log)
                grt_log_write(run->log, &r);
            if (run->history)
                grt_history_add(run->history, &r);
            sum = 0;
            since = 0;
            tp = grt_now(); /* the validation's time is not the training's */
        }
    }
    if (res->ran == 0) {
        /* nothing to run (a resumed run that is done): the params as they are */
        res->loss = grt_text_loss(c, params, train, NULL);
        if (has_valid)
            res->valid.loss = grt_text_loss(c, params, valid, NULL);
    }
    if (st) {
        grt_state_free(st);
        st->valid = 1;
        st->epoch = 0;
        st->step = step;
        st->rng = rng;
        st->opt_kind = opt.kind;
        st->t = opt.t;
        if (opt.m) {
            st->m = grt_xmalloc(np, sizeof(grt_real));
            memcpy(st->m, opt.m, np * sizeof(grt_real));
        }
        if (opt.v) {
            st->v = grt_xmalloc(np, sizeof(grt_real));
            memcpy(st->v, opt.v, np * sizeof(grt_real));
        }
    }
out:
    grt_opt_free(&opt);
    free(grad);
    free(prev);
    return status;
}

/* The text so far (ids) into the window: its last min(n, T) ids at the
 * start, padding (id 0) after them; returns the last real position. */
static size_t context(grt_ctx *c, const unsigned char *ids, size_t n, size_t T)
{
    size_t k = n < T ? n : T, j;
    for (j = 0; j < T; j++)
        c->x[j] = j < k ? (grt_real)ids[n - k + j] : 0;
    return k - 1;
}

int grt_sample(grt_ctx *c, const grt_real *params, const grt_stats *s, const grt_sample_opts *o,
               FILE *out, grt_err *e)
{
    const grt_model *m = c->m;
    size_t T, plen = o->prompt ? strlen(o->prompt) : 0, n, j, i;
    int V, nv;
    unsigned char *ids, dec[256];
    double *p;
    int *order;
    grt_rng rng;
    int status = 0;

    if (!grt_text_model(m, &T, &V) || V > 256)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_USAGE,
                        "%s: error: sample needs a model whose input is int(V)[T] (V at most "
                        "256) and whose target is class(V)[T]",
                        m->name);
    if (V < 256 && s->nvocab == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                        "%s: error: no vocabulary (a VOCB section): it was not written by "
                        "train --text, and model '%s' (int(%d)) needs one to write text",
                        o->params_name, m->name, V);
    nv = s->nvocab ? s->nvocab : V;
    for (i = 0; i < 256; i++)
        dec[i] = (unsigned char)i;
    if (s->nvocab)
        memcpy(dec, s->vocab, (size_t)s->nvocab);
    ids = grt_xmalloc(plen + o->tokens + 1, 1);
    if (plen) {
        /* every unknown character of the prompt, named once */
        char bad[512] = "", ch[16];
        int known[256], nbad = 0, c2;
        for (c2 = 0; c2 < 256; c2++)
            known[c2] = s->nvocab ? 0 : c2 < V;
        for (c2 = 0; c2 < s->nvocab; c2++)
            known[s->vocab[c2]] = 1;
        for (i = 0; i < plen; i++) {
            unsigned char b = (unsigned char)o->prompt[i];
            if (known[b])
                continue;
            known[b] = 1; /* once */
            show_byte(ch, sizeof ch, b);
            if (strlen(bad) + strlen(ch) + 3 < sizeof bad)
                snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%s%s", nbad ? ", " : "", ch);
            nbad++;
        }
        if (nbad) {
            free(ids);
            return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                            "--prompt: error: %s %s not in the vocabulary of %s (the %d "
                            "characters of the training text)",
                            bad, nbad == 1 ? "is" : "are", o->params_name, nv);
        }
        status = grt_text_encode((const unsigned char *)o->prompt, plen, s, V, "--prompt",
                                 o->params_name, ids, e);
        if (status) {
            free(ids);
            return status;
        }
        n = plen;
    } else {
        /* no prompt: the context starts with a newline (or the first
         * character of the vocabulary), which is not printed */
        ids[0] = 0;
        for (i = 0; i < (size_t)nv; i++)
            if (dec[i] == '\n')
                ids[0] = (unsigned char)i;
        n = 1;
    }
    if (plen)
        fwrite(o->prompt, 1, plen, out);
    grt_rng_seed(&rng, o->seed);
    p = grt_xmalloc((size_t)nv, sizeof(double));
    order = grt_xmalloc((size_t)nv, sizeof(int));
    for (j = 0; j < o->tokens; j++) {
        size_t at = context(c, ids, n, T), next = 0;
        const grt_real *z;
        double mx = -INFINITY, sum = 0, u;
        int kk, a;
        m->predict(params, c->state, c->x, 1, c->out, c->work);
        z = c->out + at * (size_t)V;
        for (kk = 0; kk < nv; kk++)
            if ((double)z[kk] > mx)
                mx = (double)z[kk], next = (size_t)kk;
        if (o->temperature > 0) {
            /* top-k: the k largest logits (ties by the lower id) */
            int K = o->top_k > 0 && o->top_k < nv ? o->top_k : nv;
            for (kk = 0; kk < nv; kk++)
                order[kk] = kk;
            for (a = 0; a < K; a++) {
                int best = a, b;
                for (b = a + 1; b < nv; b++)
                    if (z[order[b]] > z[order[best]])
                        best = b;
                kk = order[a], order[a] = order[best], order[best] = kk;
            }
            for (a = 0; a < K; a++)
                sum += p[a] = exp(((double)z[order[a]] - mx) / o->temperature);
            u = (double)(grt_rng_next(&rng) >> 11) * 0x1p-53 * sum;
            next = (size_t)order[K - 1];
            for (a = 0; a < K; a++) {
                if (u < p[a]) {
                    next = (size_t)order[a];
                    break;
                }
                u -= p[a];
            }
        }
        ids[n++] = (unsigned char)next;
        putc(dec[next], out);
    }
    putc('\n', out);
    free(p);
    free(order);
    free(ids);
    if (fflush(out) != 0 || ferror(out))
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "<stdout>: error: cannot write the sample");
    return 0;
}
