/*
 * rt_data.c: CSV data sets and their standardization.
 *
 * A row holds the model's input values in declaration order, then its target
 * values (a class target is one column holding the index). The first
 * non-blank row is a header when one of its fields is not a number. Lines may
 * be of any length (getline), may end in CRLF, and blank lines are skipped
 * wherever they are, as pandas does. Fields are separated by commas, with
 * spaces and tabs around them ignored; quoting is not supported, as numbers
 * never need it.
 *
 * Errors name the place as gcc would: "FILE:LINE:COL: error: ...",
 * LINE 1-based, COL the 1-based byte column where the offending field starts
 * (after a UTF-8 byte order mark), and the message gives the field's 1-based
 * index too: "data.csv:312:9: error: 'abc' is not a number (field 5)".
 */
#include "rt_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ numbers */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int lower(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* Whether s[0..len) is, ignoring case, exactly the word w. */
static int is_word(const char *s, size_t len, const char *w)
{
    size_t i;
    for (i = 0; i < len && w[i]; i++)
        if (lower(s[i]) != w[i])
            return 0;
    return i == len && !w[i];
}

int grt_parse_number(const char *s, size_t len, double *out)
{
    size_t i = 0, digits = 0;
    char small[128], *tmp;
    double v;
    char *end;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < len && is_digit(s[i]); i++)
        digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && is_digit(s[i]); i++)
            digits++;
    if (digits == 0) {
        /* What strtod would take for NaN or infinity is refused by name. */
        size_t k = len && (s[0] == '+' || s[0] == '-');
        if (is_word(s + k, len - k, "nan") || is_word(s + k, len - k, "inf") ||
            is_word(s + k, len - k, "infinity") ||
            (len - k > 4 && is_word(s + k, 4, "nan(") && s[len - 1] == ')'))
            return GRT_NUM_NONFINITE;
        return GRT_NUM_BAD;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t edigits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < len && is_digit(s[i]); i++)
            edigits++;
        if (edigits == 0)
            return GRT_NUM_BAD;
    }
    if (i != len)
        return GRT_NUM_BAD;

    /* Fast path for short integers (pixel values, class indices): up to 15
     * digits stay below 2^53, so the sum is exact, what strtod would give. */
    if (len <= 15) {
        size_t k = (s[0] == '+' || s[0] == '-');
        double v = 0;
        for (; k < len && is_digit(s[k]); k++)
            v = v * 10 + (s[k] - '0');
        if (k == len) {
            *out = s[0] == '-' ? -v : v;
            return GRT_NUM_OK;
        }
    }

    /* strtod wants a terminated string; fields are slices of a line. */
    tmp = len < sizeof small ? small : grt_xmalloc(len + 1, 1);
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    v = strtod(tmp, &end);
    if (tmp != small)
        free(tmp);
    if (errno == ERANGE && isinf(v))
        return GRT_NUM_RANGE;
    *out = v;
    return GRT_NUM_OK;
}

/* ------------------------------------------------------------------ data sets */

void grt_data_free(grt_data *d)
{
    free(d->x);
    free(d->y);
    free(d->global);
    free(d->local);
    d->x = d->y = NULL;
    d->global = d->local = NULL;
    d->n = d->cap = d->total = 0;
}

size_t grt_data_total(const grt_data *d) { return d->global ? d->total : d->n; }

size_t grt_data_local(const grt_data *d, size_t g)
{
    if (!d->global)
        return g < d->n ? g : SIZE_MAX;
    return g < d->total ? d->local[g] : SIZE_MAX;
}

/* Makes d a part of a set of total rows whose global numbers are g
 * (malloc'd, taken over, d->n of them). */
static void set_part(grt_data *d, size_t total, size_t *g)
{
    size_t i;
    free(d->global);
    free(d->local);
    d->total = total;
    d->global = g;
    d->local = grt_xmalloc(total ? total : 1, sizeof(size_t));
    for (i = 0; i < total; i++)
        d->local[i] = SIZE_MAX;
    for (i = 0; i < d->n; i++)
        d->local[g[i]] = i;
}

void grt_data_keep_part(grt_data *d, int rank, int size)
{
    size_t i, k = 0, P = (size_t)size, N = d->n, *g;
    if (size <= 1)
        return;
    g = grt_xmalloc(N / P + 1, sizeof(size_t));
    for (i = (size_t)rank; i < N; i += P, k++) {
        memmove(d->x + k * d->nx, d->x + i * d->nx, d->nx * sizeof(double));
        if (d->ny)
            memmove(d->y + k * d->ny, d->y + i * d->ny, d->ny * sizeof(double));
        g[k] = i;
    }
    d->n = k;
    set_part(d, N, g);
}

void grt_data_hold_out(grt_data *d, grt_data *v, double fraction, uint64_t seed)
{
    size_t N = grt_data_total(d), k, i, j, *idx, *before, *gt, *gv, nt = 0, nv = 0;
    char *out;
    grt_data keep;
    grt_rng r;

    memset(v, 0, sizeof *v);
    v->nx = d->nx;
    v->ny = d->ny;
    if (N < 2)
        return;
    k = (size_t)(fraction * (double)N + 0.5);
    k = k < 1 ? 1 : k > N - 1 ? N - 1 : k;
    idx = grt_xmalloc(N, sizeof(size_t));
    out = grt_xcalloc(N, 1);
    for (i = 0; i < N; i++)
        idx[i] = i;
    grt_rng_seed(&r, seed ^ UINT64_C(0x76616c6964617465)); /* "validate" */
    grt_shuffle(&r, idx, N);
    for (i = 0; i < k; i++)
        out[idx[i]] = 1;
    /* before[i]: rows held out among 0..i-1, so that the rows left keep
     * their order, renumbered, in both sets */
    before = idx;
    for (i = 0, j = 0; i < N; i++) {
        before[i] = j;
        j += (size_t)out[i];
    }
    memset(&keep, 0, sizeof keep);
    keep.nx = d->nx;
    keep.ny = d->ny;
    gt = grt_xmalloc(d->n + 1, sizeof(size_t));
    gv = grt_xmalloc(d->n + 1, sizeof(size_t));
    for (i = 0; i < d->n; i++) {
        size_t g = d->global ? d->global[i] : i;
        if (out[g]) {
            gv[nv++] = before[g];
            grt_data_push(v, d, i);
        } else {
            gt[nt++] = g - before[g];
            grt_data_push(&keep, d, i);
        }
    }
    if (d->global) {
        set_part(&keep, N - k, gt);
        set_part(v, k, gv);
    } else {
        free(gt);
        free(gv);
    }
    grt_data_free(d);
    *d = keep;
    free(idx);
    free(out);
}

/* Room for one more row. */
static void grow(grt_data *d)
{
    if (d->n < d->cap)
        return;
    d->cap = d->cap ? 2 * d->cap : 64;
    d->x = grt_xrealloc(d->x, d->cap, d->nx * sizeof(double));
    d->y = grt_xrealloc(d->y, d->cap, d->ny * sizeof(double));
}

void grt_data_push(grt_data *dst, const grt_data *src, size_t i)
{
    grow(dst);
    memcpy(dst->x + dst->n * dst->nx, src->x + i * src->nx, src->nx * sizeof(double));
    if (src->ny)
        memcpy(dst->y + dst->n * dst->ny, src->y + i * src->ny, src->ny * sizeof(double));
    dst->n++;
}

/* ------------------------------------------------------------------ CSV rows */

/* The fields of one line, trimmed of spaces and tabs. */
typedef struct row {
    size_t n;      /* fields */
    size_t cap;    /* entries allocated in start and end */
    size_t *start; /* first byte of each field, an offset into the line */
    size_t *end;   /* one past its last byte */
} row;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static void split(row *r, const char *s, size_t len)
{
    size_t i = 0;
    r->n = 0;
    for (;;) {
        size_t a, b;
        while (i < len && is_blank(s[i]))
            i++;
        a = i;
        while (i < len && s[i] != ',')
            i++;
        b = i;
        while (b > a && is_blank(s[b - 1]))
            b--;
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 16;
            r->start = grt_xrealloc(r->start, r->cap, sizeof(size_t));
            r->end = grt_xrealloc(r->end, r->cap, sizeof(size_t));
        }
        r->start[r->n] = a;
        r->end[r->n] = b;
        r->n++;
        if (i >= len)
            break;
        i++; /* the comma */
    }
}

/* A field as quoted in a message: at most 40 bytes, unprintable bytes as '?'. */
static void show(char *dst, size_t cap, const char *s, size_t len)
{
    size_t i, n = len > 40 ? 40 : len;
    if (n > cap - 4)
        n = cap - 4;
    for (i = 0; i < n; i++)
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n < len)
        memcpy(dst + n, "...", 3), n += 3;
    dst[n] = '\0';
}

/* What a row of mode must hold, for messages: "4 fields (3 inputs + 1 target)". */
static void expectation(char *dst, size_t cap, const grt_model *m, int mode)
{
    size_t nx = m->input_size, ny = m->target_size;
    if (ny == 0)
        snprintf(dst, cap, "%zu fields (the inputs)", nx);
    else if (mode == GRT_CSV_TARGETS)
        snprintf(dst, cap, "%zu fields (%zu input%s + %zu target%s)", nx + ny, nx,
                 nx == 1 ? "" : "s", ny, ny == 1 ? "" : "s");
    else
        snprintf(dst, cap, "%zu fields (the inputs) or %zu (inputs and targets)", nx,
                 nx + ny);
}

/* Whether a row of n fields has the right count for mode. */
static int count_ok(const grt_model *m, int mode, size_t n)
{
    size_t nx = m->input_size, ny = m->target_size;
    if (n == nx + ny)
        return 1;
    return mode == GRT_CSV_INPUTS && n == nx;
}

/* State of one CSV read. */
typedef struct reader {
    const char *name;   /* file name for messages */
    const grt_model *m; /* the model whose rows we read */
    int mode;           /* enum grt_csv_mode */
    long line;          /* 1-based number of the current line */
    const char *s;      /* the current line, without BOM and line end */
    size_t len;         /* its length */
    row r;              /* its fields */
    int *nclasses;      /* per target value: class(n) count or 0 */
    int *vocab;         /* per input value: int(V) vocabulary or 0 */
    int binary;         /* the target values must be 0 or 1 (grt_binary_target) */
    grt_err *e;         /* where errors go */
    int rank, size;     /* the part read: data rows i % size == rank */
    size_t rows;        /* data rows passed, every part's */
} reader;

/* Status 1 for a wrong field count in the current row. */
static int bad_count(reader *rd, int header)
{
    char want[128];
    size_t col = rd->len + 1;
    size_t most = rd->m->input_size + rd->m->target_size;
    if (rd->r.n > most)
        col = rd->r.start[most] + 1;
    expectation(want, sizeof want, rd->m, rd->mode);
    return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_FIELDS,
                    "%s:%ld:%zu: error: %s has %zu field%s, expected %s", rd->name, rd->line,
                    col, header ? "header" : "row", rd->r.n, rd->r.n == 1 ? "" : "s", want);
}

/* Parses field i of the current row into *v. */
static int field(reader *rd, size_t i, double *v)
{
    const char *s = rd->s + rd->r.start[i];
    size_t len = rd->r.end[i] - rd->r.start[i];
    size_t col = rd->r.start[i] + 1;
    char txt[64];
    int k;

    if (len == 0)
        return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_NUMBER,
                        "%s:%ld:%zu: error: empty field (field %zu)", rd->name, rd->line, col,
                        i + 1);
    k = grt_parse_number(s, len, v);
    if (k == GRT_NUM_OK && fabs(*v) <= GRT_REAL_MAX)
        return 0;
    show(txt, sizeof txt, s, len);
    if (k == GRT_NUM_OK) /* finite in double, infinite in the model's float */
        return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_NUMBER,
                        "%s:%ld:%zu: error: '%s' is out of range for %s, the model's precision "
                        "(field %zu)",
                        rd->name, rd->line, col, txt, GRT_REAL_NAME, i + 1);
    if (k == GRT_NUM_NONFINITE)
        return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_NUMBER,
                        "%s:%ld:%zu: error: '%s' is not a finite number; NaN and infinity are "
                        "refused (field %zu)",
                        rd->name, rd->line, col, txt, i + 1);
    if (k == GRT_NUM_RANGE)
        return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_NUMBER,
                        "%s:%ld:%zu: error: '%s' is out of the range of a double (field %zu)",
                        rd->name, rd->line, col, txt, i + 1);
    return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_NUMBER,
                    "%s:%ld:%zu: error: '%s' is not a number (field %zu)", rd->name, rd->line,
                    col, txt, i + 1);
}

int grt_binary_target(const grt_model *m)
{
    return m->binary && m->ntargets == 1 && m->targets[0].nclasses == 0;
}

const char *grt_target_name(const grt_model *m, size_t j)
{
    size_t off = 0;
    int t;
    for (t = 0; t < m->ntargets; t++) {
        if (j < off + m->targets[t].size)
            return m->targets[t].name;
        off += m->targets[t].size;
    }
    return "?";
}

const char *grt_input_name(const grt_model *m, size_t j)
{
    size_t off = 0;
    int t;
    for (t = 0; t < m->ninputs; t++) {
        if (j < off + m->inputs[t].size)
            return m->inputs[t].name ? m->inputs[t].name : "?";
        off += m->inputs[t].size;
    }
    return "?";
}

int *grt_input_vocab(const grt_model *m)
{
    int *v = grt_xcalloc(m->input_size ? m->input_size : 1, sizeof(int));
    size_t j = 0, k;
    int t;
    for (t = 0; t < m->ninputs; t++)
        for (k = 0; k < m->inputs[t].size && j < m->input_size; k++, j++)
            v[j] = m->inputs[t].vocab;
    return v;
}

/* A first row is a header when a field is neither a number nor a NaN or
 * infinity text (those are errors in the data, reported as such). */
static int is_header(reader *rd)
{
    size_t i;
    for (i = 0; i < rd->r.n; i++) {
        double v;
        size_t len = rd->r.end[i] - rd->r.start[i];
        int k = grt_parse_number(rd->s + rd->r.start[i], len, &v);
        if (k == GRT_NUM_BAD && len > 0)
            return 1;
    }
    return 0;
}

/* Stores the current row in d. */
static int data_row(reader *rd, grt_data *d)
{
    size_t nx = rd->m->input_size;
    size_t i;
    double *x, *y;

    if (!count_ok(rd->m, rd->mode, rd->r.n))
        return bad_count(rd, 0);
    grow(d);
    x = d->x + d->n * nx;
    y = d->y + d->n * d->ny;
    for (i = 0; i < rd->r.n; i++) {
        double v;
        int st = field(rd, i, &v);
        if (st)
            return st;
        if (i < nx) {
            if (rd->vocab[i] > 0 && !(v >= 0 && v < rd->vocab[i] && v == floor(v))) {
                char txt[64];
                show(txt, sizeof txt, rd->s + rd->r.start[i], rd->r.end[i] - rd->r.start[i]);
                return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_CLASS,
                                "%s:%ld:%zu: error: '%s' is not a token id of input '%s', "
                                "an integer in 0..%d (field %zu)",
                                rd->name, rd->line, rd->r.start[i] + 1, txt,
                                grt_input_name(rd->m, i), rd->vocab[i] - 1, i + 1);
            }
            x[i] = v;
            continue;
        }
        if (rd->mode != GRT_CSV_TARGETS)
            continue; /* predict: checked as numbers, otherwise ignored */
        y[i - nx] = v;
        if (rd->binary && v != 0 && v != 1) {
            char txt[64];
            show(txt, sizeof txt, rd->s + rd->r.start[i], rd->r.end[i] - rd->r.start[i]);
            return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_CLASS,
                            "%s:%ld:%zu: error: '%s' is not a label of binary target '%s', "
                            "0 or 1 (field %zu)",
                            rd->name, rd->line, rd->r.start[i] + 1, txt,
                            grt_target_name(rd->m, i - nx), i + 1);
        }
        if (rd->nclasses[i - nx] > 0) {
            int n = rd->nclasses[i - nx];
            if (!(v >= 0 && v < n && v == floor(v))) {
                char txt[64];
                show(txt, sizeof txt, rd->s + rd->r.start[i], rd->r.end[i] - rd->r.start[i]);
                return grt_fail(rd->e, GRT_EXIT_DATA, GRT_E_CLASS,
                                "%s:%ld:%zu: error: '%s' is not a class index of target '%s', "
                                "an integer in 0..%d (field %zu)",
                                rd->name, rd->line, rd->r.start[i] + 1, txt,
                                grt_target_name(rd->m, i - nx), n - 1, i + 1);
            }
        }
    }
    d->n++;
    return 0;
}

int grt_csv_read(FILE *f, const char *name, const grt_model *m, int mode, grt_data *d,
                 grt_err *e)
{
    return grt_csv_read_part(f, name, m, mode, 0, 1, d, e);
}

int grt_csv_read_part(FILE *f, const char *name, const grt_model *m, int mode, int rank,
                      int size, grt_data *d, grt_err *e)
{
    reader rd;
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    int seen = 0; /* a non-blank row went by */
    int status = 0;
    size_t j = 0;
    int t;

    memset(&rd, 0, sizeof rd);
    rd.name = name;
    rd.m = m;
    rd.mode = mode;
    rd.e = e;
    rd.rank = rank;
    rd.size = size > 1 ? size : 1;
    rd.binary = grt_binary_target(m);
    rd.nclasses = grt_xcalloc(m->target_size, sizeof(int));
    for (t = 0; t < m->ntargets; t++) {
        size_t k;
        for (k = 0; k < m->targets[t].size && j < m->target_size; k++, j++)
            rd.nclasses[j] = m->targets[t].nclasses;
    }
    rd.vocab = grt_input_vocab(m);
    memset(d, 0, sizeof *d);
    d->nx = m->input_size;
    d->ny = mode == GRT_CSV_TARGETS ? m->target_size : 0;

    errno = 0;
    while ((got = getline(&buf, &bufcap, f)) != -1) {
        size_t len = (size_t)got, k;
        char *s = buf;
        rd.line++;
        if (rd.line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3, len -= 3;
        while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
            len--;
        for (k = 0; k < len && (is_blank(s[k]) || s[k] == '\r'); k++)
            ;
        if (k == len)
            continue;
        rd.s = s;
        rd.len = len;
        split(&rd.r, s, len);
        if (!seen) {
            seen = 1;
            if (is_header(&rd)) {
                if (!count_ok(m, mode, rd.r.n)) {
                    status = bad_count(&rd, 1);
                    break;
                }
                continue;
            }
        }
        if (rd.rows++ % (size_t)rd.size != (size_t)rd.rank)
            continue; /* another part's row: counted, not parsed */
        status = data_row(&rd, d);
        if (status)
            break;
    }
    if (!status && ferror(f))
        status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", name,
                          strerror(errno ? errno : EIO));
    if (!status && rd.size > 1) {
        /* a part: the global numbers of its rows */
        size_t i, *g = grt_xmalloc(d->n + 1, sizeof(size_t));
        for (i = 0; i < d->n; i++)
            g[i] = (size_t)rd.rank + i * (size_t)rd.size;
        set_part(d, rd.rows, g);
    }
    if (!status && rd.rows == 0) /* a part may be empty, the file may not */
        status = grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                          seen ? "%s: error: no examples, only a header"
                               : "%s: error: empty file, no examples",
                          name);
    free(buf);
    free(rd.r.start);
    free(rd.r.end);
    free(rd.nclasses);
    free(rd.vocab);
    if (status)
        grt_data_free(d);
    return status;
}

int grt_csv_load(const char *path, const grt_model *m, int mode, grt_data *d, grt_err *e)
{
    return grt_csv_load_part(path, m, mode, 0, 1, d, e);
}

int grt_csv_load_part(const char *path, const grt_model *m, int mode, int rank, int size,
                      grt_data *d, grt_err *e)
{
    FILE *f;
    int status;
    if (strcmp(path, "-") == 0)
        return grt_csv_read_part(stdin, "<stdin>", m, mode, rank, size, d, e);
    f = fopen(path, "r");
    if (!f) {
        memset(d, 0, sizeof *d);
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot open: %s", path,
                        strerror(errno));
    }
    status = grt_csv_read_part(f, path, m, mode, rank, size, d, e);
    fclose(f);
    return status;
}

/* ------------------------------------------------------------ standardization */

void grt_stats_compute(const grt_data *d, grt_stats *s)
{
    size_t i, j, nx = d->nx;
    double N = grt_data_total(d) ? (double)grt_data_total(d) : 1.0;
    double *lo, *hi; /* lows, and highs negated: both minima over the ranks */

    lo = grt_xmalloc(nx, sizeof(double));
    hi = grt_xmalloc(nx, sizeof(double));
    s->n = nx;
    s->mean = grt_xcalloc(nx, sizeof(double));
    s->std = grt_xcalloc(nx, sizeof(double));
    for (j = 0; j < nx; j++)
        lo[j] = hi[j] = INFINITY;
    for (i = 0; i < d->n; i++)
        for (j = 0; j < nx; j++) {
            double v = d->x[i * nx + j];
            s->mean[j] += v;
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = -v < hi[j] ? -v : hi[j];
        }
    grt_comm_sum(s->mean, nx);
    grt_comm_min(lo, nx);
    grt_comm_min(hi, nx);
    for (j = 0; j < nx; j++)
        s->mean[j] /= N;
    /* Two passes: the sum of squared deviations, not E[x^2] - E[x]^2. */
    for (i = 0; i < d->n; i++)
        for (j = 0; j < nx; j++) {
            double dv = d->x[i * nx + j] - s->mean[j];
            s->std[j] += dv * dv;
        }
    grt_comm_sum(s->std, nx);
    for (j = 0; j < nx; j++) {
        double sd = sqrt(s->std[j] / N);
        /* A constant column (rounding may leave a tiny sd) is left unscaled. */
        s->std[j] = (lo[j] == -hi[j] || !(sd > 0) || !isfinite(sd)) ? 1.0 : sd;
    }
    free(lo);
    free(hi);
}

double grt_data_spread(const grt_data *d, size_t *narrow, size_t *wide, double range[4])
{
    size_t i, j, nx = d->nx, k;
    double *lo = grt_xmalloc(2 * nx + 1, sizeof(double)); /* lows, then highs negated */
    double ratio = 1;
    for (j = 0; j < 2 * nx; j++)
        lo[j] = INFINITY;
    for (i = 0; i < d->n; i++)
        for (j = 0; j < nx; j++) {
            double v = d->x[i * nx + j];
            lo[j] = v < lo[j] ? v : lo[j];
            lo[nx + j] = -v < lo[nx + j] ? -v : lo[nx + j];
        }
    grt_comm_min(lo, 2 * nx);
    *narrow = *wide = 0;
    for (j = 0, k = 0; j < nx; j++) {
        double span = -lo[nx + j] - lo[j];
        if (!(span > 0) || !isfinite(span))
            continue; /* a constant column says nothing of scale */
        if (k++ == 0 || span < -lo[nx + *narrow] - lo[*narrow])
            *narrow = j;
        if (k == 1 || span > -lo[nx + *wide] - lo[*wide])
            *wide = j;
    }
    if (k > 1) {
        range[0] = lo[*narrow];
        range[1] = -lo[nx + *narrow];
        range[2] = lo[*wide];
        range[3] = -lo[nx + *wide];
        ratio = (range[3] - range[2]) / (range[1] - range[0]);
    }
    free(lo);
    return ratio;
}

void grt_stats_apply(const grt_stats *s, grt_data *d)
{
    size_t i, j;
    if (s->n == 0)
        return;
    for (i = 0; i < d->n; i++)
        for (j = 0; j < d->nx && j < s->n; j++)
            d->x[i * d->nx + j] = (d->x[i * d->nx + j] - s->mean[j]) / s->std[j];
}

void grt_stats_free(grt_stats *s)
{
    free(s->mean);
    free(s->std);
    free(s->state);
    s->mean = s->std = NULL;
    s->state = NULL;
    s->n = s->nstate = 0;
    s->nvocab = 0;
}
