/*
 * rt_history.c: the history of a training run: its figures per epoch (or,
 * for a run counted in steps, per evaluation point) in memory, and the CSV
 * log that `train --log FILE.csv` writes and `plot` reads.
 *
 *   epoch,loss,acc,val_loss,val_acc,lr,seconds
 *   1,0.693147,0.51,0.690001,0.55,0.1,0.004
 *
 * Empty fields where there is no value (no accuracy, no validation data);
 * seconds since the run started. A run counted in steps (text models)
 * writes `step` for `epoch`. The reader finds columns by their header
 * names, and takes the names of older logs too (valid_loss, valid_acc).
 *
 * The log is an output like any other (grt_output.h): written to a
 * temporary file beside it, flushed row by row, and renamed into place when
 * the run ends, also when training fails (the log of a diverged run is the
 * record of what happened); a device or FIFO is written in place. A run
 * that resumes appends: the rows of the log it continues come first.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- history */

void grt_history_add(grt_history *h, const grt_hrow *r)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->row = grt_xrealloc(h->row, h->cap, sizeof(grt_hrow));
    }
    h->row[h->n++] = *r;
}

void grt_history_free(grt_history *h)
{
    free(h->row);
    memset(h, 0, sizeof *h);
}

/* ------------------------------------------------------------------- logs */

/* The columns of a log, and the names a header may give them. */
enum { L_X, L_LOSS, L_ACC, L_VLOSS, L_VACC, L_LR, L_SEC, L_N };
static const struct {
    const char *name; /* in a header */
    int col;          /* which column */
} NAMES[] = {
    {"epoch", L_X},       {"step", L_X},         {"loss", L_LOSS},   {"acc", L_ACC},
    {"val_loss", L_VLOSS}, {"valid_loss", L_VLOSS}, {"val_acc", L_VACC}, {"valid_acc", L_VACC},
    {"lr", L_LR},         {"seconds", L_SEC},
};

static double *column(grt_hrow *r, int col)
{
    switch (col) {
    case L_X: return &r->x;
    case L_LOSS: return &r->loss;
    case L_ACC: return &r->acc;
    case L_VLOSS: return &r->val_loss;
    case L_VACC: return &r->val_acc;
    case L_LR: return &r->lr;
    default: return &r->seconds;
    }
}

/* A value of the log; NaN is an empty field. */
static void field(FILE *f, const char *fmt, double v)
{
    fputc(',', f);
    if (isfinite(v))
        fprintf(f, fmt, v);
}

void grt_log_row(FILE *f, const grt_hrow *r)
{
    fprintf(f, "%.0f", r->x);
    field(f, "%.9g", r->loss);
    field(f, "%.6g", r->acc);
    field(f, "%.9g", r->val_loss);
    field(f, "%.6g", r->val_acc);
    field(f, "%.9g", r->lr);
    field(f, "%.3f", r->seconds);
    fputc('\n', f);
}

/* The field at s[0..len) trimmed of blanks and CR. */
static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r' ||
                    (*s)[*len - 1] == '\n'))
        (*len)--;
}

int grt_log_read(const char *path, grt_history *h, grt_err *e)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int col[32], ncol = 0, status = 0, k, have_x = 0, have_loss = 0;
    const char *col_name[32];

    memset(h, 0, sizeof *h);
    if (!f)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot open: %s", path,
                        strerror(errno));
    while ((got = getline(&line, &cap, f)) != -1) {
        grt_hrow r;
        const char *p = line;
        size_t len = (size_t)got;
        int i;
        lineno++;
        trim(&p, &len);
        if (len == 0)
            continue;
        if (ncol == 0) {
            /* the header: which column is which */
            while (ncol < 32) {
                size_t n = 0, m;
                const char *q = p;
                while (n < len && p[n] != ',')
                    n++;
                m = n;
                trim(&q, &m);
                col[ncol] = -1;
                col_name[ncol] = "?";
                for (k = 0; k < (int)(sizeof NAMES / sizeof NAMES[0]); k++)
                    if (strlen(NAMES[k].name) == m && strncmp(q, NAMES[k].name, m) == 0) {
                        col[ncol] = NAMES[k].col;
                        col_name[ncol] = NAMES[k].name;
                        have_x |= NAMES[k].col == L_X;
                        have_loss |= NAMES[k].col == L_LOSS;
                        if (k == 1)
                            h->by_step = 1;
                    }
                ncol++;
                if (n >= len)
                    break;
                p += n + 1;
                len -= n + 1;
            }
            if (!have_x || !have_loss) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                  "%s:%ld:1: error: not a training log: the header needs "
                                  "columns 'epoch' (or 'step') and 'loss' (as --log writes: "
                                  GRT_LOG_HEADER ")",
                                  path, lineno);
                break;
            }
            continue;
        }
        for (k = 0; k < L_N; k++)
            *column(&r, k) = NAN;
        for (i = 0; i < ncol; i++) {
            size_t n = 0, m;
            const char *q = p;
            double x;
            while (n < len && p[n] != ',')
                n++;
            m = n;
            trim(&q, &m);
            if (m > 0 && col[i] >= 0) {
                int res = grt_parse_number(q, m, &x);
                if (res != GRT_NUM_OK) {
                    status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                      "%s:%ld:%ld: error: '%.*s' is not a number (column '%s')",
                                      path, lineno, (long)(q - line) + 1, (int)(m > 40 ? 40 : m),
                                      q, col_name[i]);
                    break;
                }
                *column(&r, col[i]) = x;
            }
            if (n >= len) {
                if (i + 1 < ncol) {
                    status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                      "%s:%ld:%ld: error: row has %d fields, the header %d", path,
                                      lineno, (long)(p + n - line) + 1, i + 1, ncol);
                }
                break;
            }
            if (i + 1 == ncol) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                  "%s:%ld:%ld: error: row has more fields than the header's %d",
                                  path, lineno, (long)(p + n - line) + 2, ncol);
                break;
            }
            p += n + 1;
            len -= n + 1;
        }
        if (status)
            break;
        if (!isfinite(r.x)) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG, "%s:%ld:1: error: no %s number",
                              path, lineno, h->by_step ? "step" : "epoch");
            break;
        }
        grt_history_add(h, &r);
    }
    if (!status && ferror(f))
        status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path,
                          strerror(errno ? errno : EIO));
    if (!status && h->n == 0)
        status = grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                          ncol ? "%s: error: no epochs in the log, only a header"
                               : "%s: error: empty file, not a training log",
                          path);
    free(line);
    fclose(f);
    if (status)
        grt_history_free(h);
    return status;
}

/* ---------------------------------------------------------- writing a log */

/* Status 2 with o's error message. */
static int out_fail(grt_err *e, const char *msg)
{
    return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s", msg);
}

int grt_log_open(grt_log *l, const char *path, int append, int by_step, grt_err *e)
{
    char msg[sizeof e->msg];
    grt_history old;
    struct stat sb;
    size_t i;

    memset(l, 0, sizeof *l);
    memset(&old, 0, sizeof old);
    /* the log a resumed run continues, read before anything is written */
    if (append && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        int status = grt_log_read(path, &old, e);
        if (status) {
            char why[sizeof e->msg];
            snprintf(why, sizeof why, "%s", e->msg);
            memset(e, 0, sizeof *e);
            return grt_fail(e, status, GRT_E_LOG,
                            "%s: error: cannot continue this log (%s); name another --log",
                            path, why);
        }
    }
    if (!grt_outfile_open(&l->out, path, msg, sizeof msg)) {
        grt_history_free(&old);
        return out_fail(e, msg);
    }
    l->open = 1;
    fprintf(l->out.f, "%s\n", by_step ? GRT_LOG_HEADER_STEPS : GRT_LOG_HEADER);
    for (i = 0; i < old.n; i++)
        grt_log_row(l->out.f, &old.row[i]);
    grt_history_free(&old);
    grt_outfile_flush(&l->out);
    return 0;
}

int grt_log_write(grt_log *l, const grt_hrow *r)
{
    if (!l->open)
        return 0;
    grt_log_row(l->out.f, r);
    return grt_outfile_flush(&l->out) ? 0 : -1;
}

int grt_log_close(grt_log *l, grt_err *e)
{
    char msg[sizeof e->msg];
    if (!l->open)
        return 0;
    l->open = 0;
    if (!grt_outfile_commit(&l->out, msg, sizeof msg))
        return out_fail(e, msg);
    return 0;
}

void grt_log_abort(grt_log *l)
{
    if (l->open)
        grt_outfile_abort(&l->out);
    l->open = 0;
}
