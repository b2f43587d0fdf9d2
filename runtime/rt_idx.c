/*
 * rt_idx.c: IDX data sets, the format of MNIST and Fashion-MNIST (LeCun et
 * al.), gzipped or not.
 *
 * An IDX file is a header and an array in row-major order:
 *
 *   0    2  zero bytes
 *   2    1  element type: 0x08 unsigned byte (0x09 signed byte, 0x0B short,
 *           0x0C int, 0x0D float, 0x0E double exist but are not read here)
 *   3    1  number of dimensions D
 *   4    4D the sizes, big-endian 32-bit; the first counts the records
 *   4+4D    the data
 *
 * so images are 0x00000803 (count, rows, columns) and labels 0x00000801
 * (count). zlib's gzread reads gzipped and plain files alike, so both work
 * without the user saying which.
 *
 * Images: a record (rows x columns, or whatever the dimensions after the
 * first multiply to) must hold the model's input_size values; each byte v
 * becomes v / 255, in [0, 1]. Labels: a record must hold target_size values
 * (one label per example for the usual class target); for a class(n) target
 * each must be below n. Errors name the file, the record (1-based) and the
 * byte offset in the uncompressed data, the IDX way of saying "line 312".
 */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAXDIMS 8

/* One IDX file being read. */
typedef struct idx_file {
    const char *name;       /* for messages */
    gzFile f;               /* the stream, plain or gzipped */
    int type;               /* element type byte */
    int ndims;              /* dimensions */
    uint32_t dim[IDX_MAXDIMS]; /* their sizes */
    uint64_t n;             /* records: dim[0] */
    uint64_t rec;           /* values per record: the product of the others */
    uint64_t pos;           /* uncompressed bytes read, header included */
} idx_file;

static const char *type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return "unknown";
}

/* Reads up to n bytes; returns how many (short only at the end of the
 * data), or -1 with e filled when zlib or the system fails. */
static long read_some(idx_file *x, unsigned char *p, size_t n, grt_err *e)
{
    size_t got = 0;
    while (got < n) {
        unsigned want = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
        int k = gzread(x->f, p + got, want);
        if (k < 0) {
            int zerr;
            const char *msg = gzerror(x->f, &zerr);
            if (zerr == Z_ERRNO)
                grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", x->name,
                         strerror(errno));
            else
                grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                         "%s: error: damaged gzip data after %" PRIu64 " bytes: %s", x->name,
                         x->pos + got, msg ? msg : "?");
            return -1;
        }
        if (k == 0) {
            /* a gzip stream cut short shows here as an error, not an end */
            int zerr;
            const char *msg = gzerror(x->f, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END) {
                grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                         "%s: error: damaged gzip data after %" PRIu64 " bytes: %s", x->name,
                         x->pos + got, msg ? msg : "?");
                return -1;
            }
            break;
        }
        got += (size_t)k;
    }
    x->pos += got;
    return (long)got;
}

/* "28x28", the sizes of a record. */
static void record_shape(const idx_file *x, char *dst, size_t cap)
{
    size_t len = 0;
    int d;
    dst[0] = '\0';
    if (x->ndims == 1)
        snprintf(dst, cap, "1");
    for (d = 1; d < x->ndims && len < cap; d++)
        len += (size_t)snprintf(dst + len, cap - len, d > 1 ? "x%" PRIu32 : "%" PRIu32,
                                x->dim[d]);
}

/* Opens path and reads its header. */
static int idx_open(idx_file *x, const char *path, grt_err *e)
{
    unsigned char h[4 + 4 * IDX_MAXDIMS];
    long k;
    int fd, d;

    memset(x, 0, sizeof *x);
    x->name = path;
    fd = grt_open_file(path, e);
    if (fd < 0)
        return GRT_EXIT_USAGE;
    x->f = gzdopen(fd, "rb");
    if (!x->f) {
        close(fd);
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_NOMEM, "%s: error: cannot open: %s", path,
                        "zlib could not allocate its state");
    }
    gzbuffer(x->f, 1 << 17);
    if ((k = read_some(x, h, 4, e)) < 0)
        return e->status;
    if (k == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY, "%s: error: empty file, no examples",
                        path);
    if (k < 4 || h[0] != 0 || h[1] != 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                        "%s: error: not an IDX file: it starts with %s%02x %02x %02x %02x, "
                        "an IDX file with 00 00, its type and its number of dimensions",
                        path, k < 4 ? "only " : "", h[0], k > 1 ? h[1] : 0, k > 2 ? h[2] : 0,
                        k > 3 ? h[3] : 0);
    x->type = h[2];
    x->ndims = h[3];
    if (x->type != 0x08)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                        "%s: error: IDX element type 0x%02x (%s) is not supported; this runtime "
                        "reads unsigned bytes (type 0x08)",
                        path, x->type, type_name(x->type));
    if (x->ndims < 1 || x->ndims > IDX_MAXDIMS)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                        "%s: error: IDX file with %d dimensions (magic 0x%08x); expected 1 to %d",
                        path, x->ndims, 0x800 + x->ndims, IDX_MAXDIMS);
    if ((k = read_some(x, h + 4, 4 * (size_t)x->ndims, e)) < 0)
        return e->status;
    if (k < 4 * x->ndims)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                        "%s: error: truncated IDX file: the header ends after %" PRIu64
                        " of its %d bytes",
                        path, x->pos, 4 + 4 * x->ndims);
    x->rec = 1;
    for (d = 0; d < x->ndims; d++) {
        const unsigned char *p = h + 4 + 4 * d;
        x->dim[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d > 0)
            x->rec *= x->dim[d];
        if (d > 0 && x->rec > (UINT64_C(1) << 31))
            return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                            "%s: error: IDX records of more than 2^31 values", path);
    }
    x->n = x->dim[0];
    if (x->n == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY, "%s: error: no examples: the IDX header "
                        "says 0 records", path);
    if (x->rec == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                        "%s: error: IDX records of 0 values (a dimension is 0)", path);
    return 0;
}

static void idx_close(idx_file *x)
{
    if (x->f)
        gzclose(x->f);
    x->f = NULL;
}

/* Reads record after record into rows of out (stride doubles apart, the
 * first `rec` of each), calling check on each value. */
typedef int (*value_check)(const idx_file *x, uint64_t record, uint64_t at, int v,
                           const void *arg, grt_err *e);

static int idx_read(idx_file *x, double **out, size_t stride, size_t *cap, value_check check,
                    const void *arg, grt_err *e)
{
    size_t chunk = x->rec > (1u << 20) ? 1 : (size_t)((1u << 20) / x->rec);
    unsigned char *buf = grt_xmalloc(chunk * x->rec, 1);
    uint64_t r = 0, data0 = x->pos;
    int status = 0;

    while (r < x->n) {
        size_t want = x->n - r < chunk ? (size_t)(x->n - r) : chunk, i, j;
        long k = read_some(x, buf, want * x->rec, e);
        size_t full;
        if (k < 0) {
            status = e->status;
            break;
        }
        full = (size_t)k / x->rec;
        if (r + full > *cap) {
            /* grow as the data arrives, so a lying header costs nothing */
            size_t c = *cap ? *cap : 1024;
            while (c < r + full)
                c *= 2;
            if (c > x->n)
                c = (size_t)x->n;
            *out = grt_xrealloc(*out, c, stride * sizeof(double));
            *cap = c;
        }
        for (i = 0; i < full; i++) {
            double *row = *out + (size_t)(r + i) * stride;
            const unsigned char *b = buf + i * x->rec;
            for (j = 0; j < x->rec; j++)
                row[j] = b[j];
            if (check)
                for (j = 0; j < x->rec && !status; j++)
                    status = check(x, r + i + 1, data0 + (r + i) * x->rec + j, b[j], arg, e);
            if (status)
                break;
        }
        if (status)
            break;
        r += full;
        if ((size_t)k < want * x->rec) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                              "%s: error: truncated IDX file: its header says %" PRIu64
                              " records of %" PRIu64 " bytes, but the data stops in record %" PRIu64
                              " (after %" PRIu64 " of %" PRIu64 " data bytes)",
                              x->name, x->n, x->rec, r + 1, x->pos - data0, x->n * x->rec);
            break;
        }
    }
    if (!status) {
        unsigned char extra;
        long k = read_some(x, &extra, 1, e);
        if (k < 0)
            status = e->status;
        else if (k > 0)
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                              "%s: error: IDX file longer than its header says: more data "
                              "after its %" PRIu64 " records of %" PRIu64 " bytes (byte %" PRIu64
                              ")",
                              x->name, x->n, x->rec, x->pos - 1);
    }
    free(buf);
    return status;
}

/* What check_label needs: the class count of each target value. */
typedef struct label_arg {
    const grt_model *m; /* the model */
    const int *ncls;    /* per target value: class(n) count or 0 */
} label_arg;

static int check_label(const idx_file *x, uint64_t record, uint64_t at, int v, const void *arg,
                       grt_err *e)
{
    const label_arg *a = arg;
    size_t j = (size_t)((at - (4 + 4 * (uint64_t)x->ndims)) % x->rec);
    int n = a->ncls[j];
    if (n > 0 && v >= n)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                        "%s: error: label %d of record %" PRIu64 " (byte %" PRIu64
                        ") is not a class index of target '%s', an integer in 0..%d",
                        x->name, v, record, at, grt_target_name(a->m, j), n - 1);
    return 0;
}

/* What check_token needs: the vocabulary of each input value. */
typedef struct token_arg {
    const grt_model *m; /* the model */
    const int *vocab;   /* per input value: int(V) vocabulary or 0 */
} token_arg;

static int check_token(const idx_file *x, uint64_t record, uint64_t at, int v, const void *arg,
                       grt_err *e)
{
    const token_arg *a = arg;
    size_t j = (size_t)((at - (4 + 4 * (uint64_t)x->ndims)) % x->rec);
    int n = a->vocab[j];
    if (n > 0 && v >= n)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_CLASS,
                        "%s: error: byte %d of record %" PRIu64 " (value %zu, byte %" PRIu64
                        ") is not a token id of input '%s', an integer in 0..%d",
                        x->name, v, record, j, at, grt_input_name(a->m, j), n - 1);
    return 0;
}

int grt_idx_load(const char *images, const char *labels, const grt_model *m, grt_data *d,
                 grt_err *e)
{
    token_arg ta;
    int any_vocab = 0;
    idx_file xi, yi;
    size_t xcap = 0, ycap = 0, i, j = 0;
    int status, t;
    char shape[128];
    int *ncls = NULL;
    label_arg la;

    memset(d, 0, sizeof *d);
    memset(&yi, 0, sizeof yi);
    d->nx = m->input_size;
    d->ny = labels ? m->target_size : 0;
    if ((status = idx_open(&xi, images, e)))
        goto out;
    record_shape(&xi, shape, sizeof shape);
    if (xi.rec != m->input_size) {
        status = grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                          "%s: error: images of %s = %" PRIu64 " values, but model '%s' takes "
                          "%zu input value%s per example",
                          images, shape, xi.rec, m->name, m->input_size,
                          m->input_size == 1 ? "" : "s");
        goto out;
    }
    if (labels) {
        if ((status = idx_open(&yi, labels, e)))
            goto out;
        record_shape(&yi, shape, sizeof shape);
        if (yi.rec != m->target_size) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                              "%s: error: labels of %s value%s per record, but model '%s' has "
                              "%zu target value%s per example",
                              labels, shape, yi.rec == 1 ? "" : "s", m->name, m->target_size,
                              m->target_size == 1 ? "" : "s");
            goto out;
        }
        if (yi.n != xi.n) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_IDX,
                              "%s: error: %" PRIu64 " labels, but %s has %" PRIu64 " images",
                              labels, yi.n, images, xi.n);
            goto out;
        }
    }
    /* token ids (int(V) inputs) are the bytes themselves, checked against
     * V; other values are scaled to [0, 1] */
    ta.m = m;
    ta.vocab = grt_input_vocab(m);
    for (i = 0; i < m->input_size; i++)
        any_vocab |= ta.vocab[i] > 0;
    status = idx_read(&xi, &d->x, d->nx, &xcap, any_vocab ? check_token : NULL, &ta, e);
    if (!status)
        for (i = 0; i < d->nx * xi.n; i++)
            if (!ta.vocab[i % d->nx])
                d->x[i] /= 255.0;
    free((void *)ta.vocab);
    if (status)
        goto out;
    if (labels) {
        ncls = grt_xcalloc(m->target_size, sizeof(int));
        for (t = 0; t < m->ntargets; t++) {
            size_t k;
            for (k = 0; k < m->targets[t].size && j < m->target_size; k++, j++)
                /* a binary target's labels are 0 or 1, as if class(2) */
                ncls[j] = grt_binary_target(m) ? 2 : m->targets[t].nclasses;
        }
        la.m = m;
        la.ncls = ncls;
        if ((status = idx_read(&yi, &d->y, d->ny, &ycap, check_label, &la, e)))
            goto out;
    }
    d->n = (size_t)xi.n;
    d->cap = xcap;
    if (labels && ycap < xcap) {
        /* both arrays hold the same rows; keep cap true of both */
        d->y = grt_xrealloc(d->y, xcap, d->ny * sizeof(double));
    }
out:
    idx_close(&xi);
    idx_close(&yi);
    free(ncls);
    if (status)
        grt_data_free(d);
    return status;
}
