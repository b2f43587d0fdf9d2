/*
 * rt_pfile.c: the one reader of the parameter-file format, independent of
 * the precision this object is built for, so that gradc itself links it
 * (`gradc -c --embed-params`) as well as both runtimes.
 *
 * The layout, version 1 (docs/runtime.md has the table); integers unsigned
 * little-endian, reals IEEE-754 little-endian of the file's width:
 *
 *   0   8  magic "GRADCPRM"
 *   8   4  format version (1)
 *   12  4  bytes per real: 4 float, 8 double
 *   16  8  file size in bytes, checksum included
 *   24  8  model hash (grt_model.hash)
 *   32  8  param_count
 *   40  8  input_size
 *   48  4  model name length L
 *   52  L  model name, no terminator
 *   ...    sections: 4-byte tag, 8-byte payload length, payload
 *            "PARM"  param_count reals (required, once)
 *            "STDZ"  n, n means, n stds as doubles (when standardized)
 *            "STAT"  state_count reals: running statistics (batch_norm)
 *            "VOCB"  a text model's vocabulary: its characters, ascending
 *            "OPTS"  the optimizer's kind, step count and moments
 *            "RNGS"  the shuffle generator's state and the epochs done
 *            "STEP"  optimizer steps done (runs counted in steps)
 *            "BEST"  early stopping: the best epoch, its loss and params
 *            "KEPT"  that epoch's training loss and accuracy, its
 *                    validation accuracy (doubles, NaN: none)
 *            "END "  empty, last
 *   S-8 8  FNV-1a 64 of bytes 0 .. S-9
 *
 * Sections make the format extensible without a new version: a reader skips
 * tags it does not know, so an older runtime still loads the params of a
 * file with newer sections. The version changes only when an old reader
 * would misread a new file.
 *
 * Decoding checks everything a checksum cannot: the structure, that the
 * file is of the model at hand, and that every value is one a run could
 * have written (finite reals, standard deviations above 0): a file crafted
 * with a valid checksum and NaN params is refused, not loaded.
 */
#include "rt_internal.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char MAGIC[8] = {'G', 'R', 'A', 'D', 'C', 'P', 'R', 'M'};

uint64_t grt_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

double grt_pfile_real(int real, const unsigned char *p)
{
    if (real == 8) {
        uint64_t u = grt_get_le(p, 8);
        double v;
        memcpy(&v, &u, 8);
        return v;
    } else {
        uint32_t u = (uint32_t)grt_get_le(p, 4);
        float v;
        memcpy(&v, &u, 4);
        return v;
    }
}

/* Status 1 with "NAME: error: " and the formatted rest. */
static int damaged(grt_err *e, int code, const char *name, const char *fmt, ...)
    GRT_PRINTF(4, 5);
static int damaged(grt_err *e, int code, const char *name, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return grt_fail(e, GRT_EXIT_DATA, code, "%s: error: %s", name, what);
}

/* Status 1 for a section that passed the checksum but is malformed. */
static int bad_section(grt_err *e, const char *name, const char *tag)
{
    return damaged(e, GRT_E_FORMAT, name, "malformed parameter file: bad %.4s section", tag);
}

/* Index of the first value of n reals at p that is NaN or infinite, or n. */
static size_t first_nonfinite(int real, const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(grt_pfile_real(real, p + i * (size_t)real)))
            return i;
    return n;
}

void grt_param_where(const grt_param_info *p, int n, size_t i, const char **name, char *index,
                     size_t cap)
{
    int k, d;
    *name = "?";
    snprintf(index, cap, "[%zu]", i);
    for (k = 0; k < n; k++) {
        size_t r, len = 0, stride = p[k].size;
        if (i < p[k].offset || i - p[k].offset >= p[k].size)
            continue;
        *name = p[k].name ? p[k].name : "?";
        r = i - p[k].offset;
        /* row-major: the first axis varies slowest */
        len += (size_t)snprintf(index, cap, "[");
        for (d = 0; d < p[k].rank && len < cap; d++) {
            stride /= p[k].dim[d] > 0 ? (size_t)p[k].dim[d] : 1;
            len += (size_t)snprintf(index + len, cap - len, d ? ", %zu" : "%zu",
                                    stride ? r / stride : 0);
            r = stride ? r % stride : 0;
        }
        if (len < cap)
            snprintf(index + len, cap - len, "]");
        return;
    }
}

/* Status 1 when one of n reals at p is not finite; what says whose they are
 * ("param", "optimizer moment": by param name when the values run over the
 * params, per_param). */
static int finite_reals(grt_err *e, const char *name, const grt_pfile_want *w, int real,
                        const unsigned char *p, size_t n, int per_param, const char *what)
{
    size_t i = first_nonfinite(real, p, n);
    const char *pname;
    char index[128], where[300];
    double v;
    if (i == n)
        return 0;
    v = grt_pfile_real(real, p + i * (size_t)real);
    if (per_param && w->params) {
        grt_param_where(w->params, w->nparams, i % w->param_count, &pname, index, sizeof index);
        snprintf(where, sizeof where, "%s of '%s' (element %s)", what, pname, index);
    } else {
        snprintf(where, sizeof where, "%s %zu", what, i);
    }
    return damaged(e, GRT_E_VALUES, name,
                   "the %s is %s; a training run never saves one (the file was made or "
                   "changed by something else)",
                   where, isnan(v) ? "NaN" : "infinite");
}

/* The tags this reader knows, in the order they are written. */
static const char *const TAGS[GRT_PF_NTAGS] = {"PARM", "STDZ", "STAT", "VOCB", "OPTS",
                                               "RNGS", "STEP", "BEST", "KEPT"};

int grt_pfile_decode(const unsigned char *buf, size_t size, const char *name,
                     const grt_pfile_want *w, grt_pfile *f, grt_err *e)
{
    uint64_t version, real, fsize, hash, count, nin, sum, nlen;
    size_t pos, i;

    memset(f, 0, sizeof *f);
    if (size == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                        "%s: error: empty file, not a parameter file", name);
    if (memcmp(buf, MAGIC, size < 8 ? size : 8) != 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_MAGIC,
                        "%s: error: not a gradc parameter file (no GRADCPRM magic)", name);
    if (size < 12)
        return damaged(e, GRT_E_TRUNCATED, name, "truncated parameter file: %zu bytes", size);
    version = grt_get_le(buf + 8, 4);
    if (version != GRT_PARAMS_VERSION)
        return damaged(e, GRT_E_VERSION, name,
                       "parameter file format version %" PRIu64
                       " is not supported; this runtime reads version %d",
                       version, GRT_PARAMS_VERSION);
    if (size < GRT_PARAMS_HEADER + 8)
        return damaged(e, GRT_E_TRUNCATED, name, "truncated parameter file: %zu bytes", size);
    fsize = grt_get_le(buf + 16, 8);
    if (fsize > size)
        return damaged(e, GRT_E_TRUNCATED, name,
                       "truncated parameter file: %zu bytes, its header says %" PRIu64, size,
                       fsize);
    if (fsize < size)
        return damaged(e, GRT_E_CHECKSUM, name,
                       "damaged parameter file: %zu bytes, its header says %" PRIu64, size,
                       fsize);
    sum = grt_fnv1a64(GRT_FNV_INIT, buf, size - 8);
    if (sum != grt_get_le(buf + size - 8, 8))
        return damaged(e, GRT_E_CHECKSUM, name,
                       "damaged parameter file: checksum %016" PRIx64
                       " does not match its contents (%016" PRIx64 ")",
                       grt_get_le(buf + size - 8, 8), sum);

    real = grt_get_le(buf + 12, 4);
    hash = grt_get_le(buf + 24, 8);
    count = grt_get_le(buf + 32, 8);
    nin = grt_get_le(buf + 40, 8);
    nlen = grt_get_le(buf + 48, 4);
    if (nlen > size - 8 - GRT_PARAMS_HEADER)
        return damaged(e, GRT_E_FORMAT, name,
                       "malformed parameter file: model name runs past the end");
    if (real != 4 && real != 8)
        return damaged(e, GRT_E_FORMAT, name,
                       "malformed parameter file: %" PRIu64 "-byte reals", real);
    if (real != (uint64_t)w->real)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_PRECISION,
                        "%s: error: the file holds %s parameters, but %s '%s' is %s", name,
                        real == 8 ? "double" : "float",
                        w->who ? w->who : "this executable of model", w->name,
                        w->real == 8 ? "double" : "float");
    if (hash != w->hash || count != w->param_count || nin != w->input_size ||
        nlen != strlen(w->name) || memcmp(buf + GRT_PARAMS_HEADER, w->name, nlen) != 0) {
        char fname[80];
        size_t k = nlen < 64 ? (size_t)nlen : 64;
        for (i = 0; i < k; i++) {
            unsigned char c = buf[GRT_PARAMS_HEADER + i];
            fname[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        fname[k] = '\0';
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_MISMATCH,
                        "%s: error: parameters of model '%s' (hash %016" PRIx64 ", %" PRIu64
                        " params, %" PRIu64 " inputs), not of this model '%s' (hash %016" PRIx64
                        ", %zu params, %zu inputs)",
                        name, fname, hash, count, nin, w->name, w->hash, w->param_count,
                        w->input_size);
    }
    f->real = (int)real;

    /* Sections, up to "END ". */
    pos = GRT_PARAMS_HEADER + (size_t)nlen;
    for (;;) {
        uint64_t len;
        const unsigned char *tag = buf + pos;
        int t;
        if (size - 8 - pos < GRT_PARAMS_SECTION)
            return damaged(e, GRT_E_FORMAT, name, "malformed parameter file: no END section");
        len = grt_get_le(buf + pos + 4, 8);
        pos += GRT_PARAMS_SECTION;
        if (len > size - 8 - pos)
            return damaged(e, GRT_E_FORMAT, name,
                           "malformed parameter file: section '%.4s' runs past the end",
                           (const char *)tag);
        if (memcmp(tag, "END ", 4) == 0)
            break;
        for (t = 0; t < GRT_PF_NTAGS && memcmp(tag, TAGS[t], 4) != 0; t++)
            ;
        /* any other tag: a later addition this reader does not need */
        if (t < GRT_PF_NTAGS) {
            if (f->sec[t])
                return bad_section(e, name, TAGS[t]);
            f->sec[t] = buf + pos;
            f->len[t] = (size_t)len;
        }
        pos += (size_t)len;
    }
    if (!f->sec[GRT_PF_PARM])
        return damaged(e, GRT_E_FORMAT, name, "malformed parameter file: no PARM section");
    return grt_pfile_check(f, name, w, e);
}

int grt_pfile_check(const grt_pfile *f, const char *name, const grt_pfile_want *w, grt_err *e)
{
    size_t np = w->param_count, real = (size_t)f->real, i;
    const unsigned char *p;
    int status;

    /* structure first, then values: a wrong length is damage, a NaN is not */
    if (f->len[GRT_PF_PARM] != np * real)
        return bad_section(e, name, "PARM");
    if ((p = f->sec[GRT_PF_STDZ])) {
        uint64_t k = f->len[GRT_PF_STDZ] >= 8 ? grt_get_le(p, 8) : 0;
        if (k != w->input_size || f->len[GRT_PF_STDZ] != 8 + 16 * k)
            return bad_section(e, name, "STDZ");
    }
    if ((p = f->sec[GRT_PF_STAT]) && f->len[GRT_PF_STAT] % real != 0)
        return bad_section(e, name, "STAT");
    if ((p = f->sec[GRT_PF_VOCB])) {
        size_t n = f->len[GRT_PF_VOCB];
        if (n < 1 || n > 256)
            return bad_section(e, name, "VOCB");
        for (i = 1; i < n; i++)
            if (p[i] <= p[i - 1])
                return bad_section(e, name, "VOCB");
    }
    if ((p = f->sec[GRT_PF_OPTS])) {
        size_t len = f->len[GRT_PF_OPTS];
        uint64_t flags = len >= GRT_OPTS_FIXED ? grt_get_le(p + 4, 4) : 0;
        uint64_t k = (flags & 1 ? 1 : 0) + (flags & 2 ? 1 : 0);
        if (len < GRT_OPTS_FIXED || flags > 3 || grt_get_le(p, 4) >= GRT_OPT_COUNT ||
            len != GRT_OPTS_FIXED + k * np * real)
            return bad_section(e, name, "OPTS");
    }
    if ((p = f->sec[GRT_PF_RNGS]) &&
        (f->len[GRT_PF_RNGS] != GRT_RNGS_SIZE ||
         !(grt_get_le(p, 8) | grt_get_le(p + 8, 8) | grt_get_le(p + 16, 8) |
           grt_get_le(p + 24, 8)) ||
         grt_get_le(p + 32, 8) > 1000000000u))
        return bad_section(e, name, "RNGS");
    if ((p = f->sec[GRT_PF_STEP]) &&
        (f->len[GRT_PF_STEP] != 8 || grt_get_le(p, 8) > (uint64_t)1 << 53))
        return bad_section(e, name, "STEP");
    if ((p = f->sec[GRT_PF_BEST]) &&
        (f->len[GRT_PF_BEST] != GRT_BEST_FIXED + np * real || grt_get_le(p, 8) == 0 ||
         grt_get_le(p, 8) > 1000000000u || grt_get_le(p + 8, 8) > 1000000000u))
        return bad_section(e, name, "BEST");
    if (f->sec[GRT_PF_KEPT] && f->len[GRT_PF_KEPT] != 24)
        return bad_section(e, name, "KEPT");

    /* the values: what a run saves is finite, and a deviation above 0 */
    if ((status = finite_reals(e, name, w, f->real, f->sec[GRT_PF_PARM], np, 1, "value")))
        return status;
    if ((p = f->sec[GRT_PF_STDZ])) {
        size_t k = (f->len[GRT_PF_STDZ] - 8) / 16;
        for (i = 0; i < 2 * k; i++) {
            double v = grt_pfile_real(8, p + 8 + 8 * i);
            if (!isfinite(v) || (i >= k && !(v > 0)))
                return damaged(e, GRT_E_VALUES, name,
                               "the standardization's %s of input value %zu is %.17g; it must "
                               "be %s (the file was made or changed by something else than a "
                               "training run)",
                               i < k ? "mean" : "standard deviation", i % k, v,
                               i < k ? "finite" : "finite and above 0");
        }
    }
    if ((p = f->sec[GRT_PF_STAT])) {
        if (f->len[GRT_PF_STAT] != w->state_count * real)
            return grt_fail(e, GRT_EXIT_DATA, GRT_E_MISMATCH,
                            "%s: error: the file holds %zu running statistics, the model '%s' "
                            "keeps %zu",
                            name, f->len[GRT_PF_STAT] / real, w->name, w->state_count);
        if ((status = finite_reals(e, name, w, f->real, p, w->state_count, 0,
                                   "running statistic")))
            return status;
    }
    if ((p = f->sec[GRT_PF_OPTS])) {
        size_t k = (f->len[GRT_PF_OPTS] - GRT_OPTS_FIXED) / real;
        if ((status = finite_reals(e, name, w, f->real, p + GRT_OPTS_FIXED, k, 1,
                                   "optimizer moment")))
            return status;
    }
    if ((p = f->sec[GRT_PF_BEST]) &&
        (status = finite_reals(e, name, w, f->real, p + GRT_BEST_FIXED, np, 1,
                               "early stopping's kept value")))
        return status;
    return 0;
}

const unsigned char *grt_pfile_stdz(const grt_pfile *f, size_t *n)
{
    const unsigned char *p = f->sec[GRT_PF_STDZ];
    *n = p ? (f->len[GRT_PF_STDZ] - 8) / 16 : 0;
    return p ? p + 8 : NULL;
}
