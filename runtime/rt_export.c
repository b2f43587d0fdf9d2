/*
 * rt_export.c: parameters as NumPy files, so that other tools can read the
 * weights: `./model export PARAMS DIR` writes DIR/NAME.npy per param, and
 * `./model export PARAMS FILE.npz` one archive of them, what np.savez writes.
 *
 * .npy, format version 1.0 (numpy.lib.format): the magic "\x93NUMPY", the
 * version bytes 1 0, a 2-byte little-endian header length, then the header,
 * a Python dict literal padded with spaces to end in '\n' at a multiple of 64
 * bytes, then the values:
 *
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (16, 30), }
 *
 * '<f4' for a float model, '<f8' for a double one; C (row-major) order, the
 * layout params have. The standardization statistics, when the file has
 * them, go beside as standardize_mean.npy and standardize_std.npy ('<f8').
 *
 * .npz is a ZIP archive of such files, one per param, named NAME.npy; ours
 * stores them uncompressed (method 0) with their CRC-32 (zlib), which numpy,
 * Python's zipfile and unzip all read.
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ------------------------------------------------------------------- .npy */

unsigned char *grt_npy_encode(const void *values, size_t n, int bytes, int rank,
                              const int *dim, size_t *size)
{
    grt_buf h = {NULL, 0, 0}, b = {NULL, 0, 0};
    const unsigned char *v = values;
    size_t i, total;
    int d;

    grt_buf_printf(&h, "{'descr': '<f%d', 'fortran_order': False, 'shape': (", bytes);
    for (d = 0; d < rank; d++)
        grt_buf_printf(&h, d ? ", %d" : "%d", dim[d]);
    grt_buf_printf(&h, "%s), }", rank == 1 ? "," : "");
    /* pad with spaces so the data starts at a multiple of 64, ending in \n */
    total = 10 + h.n + 1;
    while (total % 64)
        grt_buf_put(&h, " ", 1), total++;
    grt_buf_put(&h, "\n", 1);

    grt_buf_put(&b, "\x93NUMPY\x01\x00", 8);
    grt_put_le(grt_buf_room(&b, 2), h.n, 2);
    grt_buf_put(&b, h.p, h.n);
    /* the values, little-endian whatever the machine */
    for (i = 0; i < n; i++) {
        uint64_t u = 0;
        if (bytes == 4) {
            uint32_t w;
            memcpy(&w, v + 4 * i, 4);
            u = w;
        } else {
            memcpy(&u, v + 8 * i, 8);
        }
        grt_put_le(grt_buf_room(&b, (size_t)bytes), u, bytes);
    }
    free(h.p);
    *size = b.n;
    return b.p;
}

void grt_safe_name(char *dst, size_t cap, const char *name)
{
    size_t k = 0;
    const char *s;
    if (cap == 0)
        return;
    if ((name[0] == '.' || name[0] == '-' || name[0] == '\0') && k + 1 < cap)
        dst[k++] = '_';
    for (s = name; *s && k + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        dst[k++] = ok ? c : '_';
    }
    dst[k] = '\0';
}

/* ------------------------------------------------------------------- .npz */

/* A ZIP archive of stored (uncompressed) entries, built in memory. */
typedef struct zip {
    grt_buf data;    /* local headers and contents */
    grt_buf central; /* the central directory */
    unsigned count;  /* entries */
} zip;

static void le(grt_buf *b, uint64_t v, int n) { grt_put_le(grt_buf_room(b, (size_t)n), v, n); }

static uint32_t crc_of(const unsigned char *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* Adds an entry; -1 when the archive would need ZIP64. */
static int zip_add(zip *z, const char *name, const unsigned char *p, size_t n)
{
    size_t nl = strlen(name), off = z->data.n;
    uint32_t crc = crc_of(p, n);
    if (n >= 0xffffffffu || off >= 0xffffffffu || z->count >= 0xfffe)
        return -1;
    le(&z->data, 0x04034b50, 4); /* local file header */
    le(&z->data, 20, 2);         /* version needed: 2.0 */
    le(&z->data, 0, 2);          /* flags */
    le(&z->data, 0, 2);          /* method: stored */
    le(&z->data, 0, 2);          /* time 00:00 */
    le(&z->data, 0x21, 2);       /* date 1980-01-01: reproducible bytes */
    le(&z->data, crc, 4);
    le(&z->data, n, 4);          /* compressed size */
    le(&z->data, n, 4);          /* uncompressed size */
    le(&z->data, nl, 2);
    le(&z->data, 0, 2);          /* extra field */
    grt_buf_put(&z->data, name, nl);
    grt_buf_put(&z->data, p, n);

    le(&z->central, 0x02014b50, 4); /* central directory header */
    le(&z->central, 20, 2);         /* made by: 2.0, MS-DOS attributes */
    le(&z->central, 20, 2);
    le(&z->central, 0, 2);
    le(&z->central, 0, 2);
    le(&z->central, 0, 2);
    le(&z->central, 0x21, 2);
    le(&z->central, crc, 4);
    le(&z->central, n, 4);
    le(&z->central, n, 4);
    le(&z->central, nl, 2);
    le(&z->central, 0, 2); /* extra */
    le(&z->central, 0, 2); /* comment */
    le(&z->central, 0, 2); /* disk */
    le(&z->central, 0, 2); /* internal attributes */
    le(&z->central, 0, 4); /* external attributes */
    le(&z->central, off, 4);
    grt_buf_put(&z->central, name, nl);
    z->count++;
    return 0;
}

/* The whole archive into z->data; -1 when it needs ZIP64. */
static int zip_finish(zip *z)
{
    size_t at = z->data.n;
    if (at + z->central.n >= 0xffffffffu)
        return -1;
    grt_buf_put(&z->data, z->central.p, z->central.n);
    le(&z->data, 0x06054b50, 4); /* end of central directory */
    le(&z->data, 0, 2);
    le(&z->data, 0, 2);
    le(&z->data, z->count, 2);
    le(&z->data, z->count, 2);
    le(&z->data, z->central.n, 4);
    le(&z->data, at, 4);
    le(&z->data, 0, 2); /* comment */
    return 0;
}

/* ----------------------------------------------------------------- export */

/* One array to export. */
typedef struct item {
    char file[256];     /* NAME.npy */
    const void *values; /* its values */
    size_t n;           /* how many */
    int bytes;          /* 4 or 8 */
    int rank;           /* its shape */
    int dim[GRT_MAXRANK];
} item;

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int grt_export(const char *out, const grt_model *m, const grt_real *params,
               const grt_stats *stats, FILE *list, grt_err *e)
{
    int npz = ends_with(out, ".npz"), n = 0, i, j, status = 0;
    item *it = grt_xcalloc((size_t)m->nparams + 2, sizeof(item));
    zip z;
    struct stat sb;

    memset(&z, 0, sizeof z);
    for (i = 0; i < m->nparams; i++) {
        const grt_param_info *p = &m->params[i];
        char safe[240];
        grt_safe_name(safe, sizeof safe, p->name ? p->name : "");
        snprintf(it[n].file, sizeof it[n].file, "%s.npy", safe);
        it[n].values = params + p->offset;
        it[n].n = p->size;
        it[n].bytes = GRT_REAL_BYTES;
        it[n].rank = p->rank;
        memcpy(it[n].dim, p->dim, sizeof p->dim);
        n++;
    }
    if (stats && stats->n) {
        for (j = 0; j < 2; j++) {
            snprintf(it[n].file, sizeof it[n].file, "%s", j ? "standardize_std.npy"
                                                            : "standardize_mean.npy");
            it[n].values = j ? stats->std : stats->mean;
            it[n].n = stats->n;
            it[n].bytes = 8;
            it[n].rank = 1;
            it[n].dim[0] = (int)stats->n;
            n++;
        }
    }
    /* Two params whose names differ only in characters a file name cannot
     * hold would overwrite each other. */
    for (i = 0; i < n && !status; i++)
        for (j = 0; j < i; j++)
            if (strcmp(it[i].file, it[j].file) == 0) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_USAGE,
                                  "%s: error: two arrays would both be written to '%s'", out,
                                  it[i].file);
                break;
            }
    if (status)
        goto done;

    if (!npz) {
        if (mkdir(out, 0777) != 0 && errno != EEXIST) {
            status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot create the "
                              "directory: %s", out, strerror(errno));
            goto done;
        }
        if (stat(out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO,
                              "%s: error: not a directory (to write one archive, name it "
                              "FILE.npz)", out);
            goto done;
        }
    }
    for (i = 0; i < n && !status; i++) {
        size_t size;
        unsigned char *b = grt_npy_encode(it[i].values, it[i].n, it[i].bytes, it[i].rank,
                                          it[i].dim, &size);
        if (npz) {
            if (zip_add(&z, it[i].file, b, size) != 0)
                status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO,
                                  "%s: error: too large for a .npz archive (over 4 GB); "
                                  "export to a directory instead", out);
        } else {
            size_t len = strlen(out) + strlen(it[i].file) + 2;
            char *path = grt_xmalloc(len, 1);
            snprintf(path, len, "%s/%s", out, it[i].file);
            status = grt_write_atomic(path, b, size, e);
            if (!status && list)
                fprintf(list, "%s\n", path);
            free(path);
        }
        free(b);
    }
    if (!status && npz) {
        if (zip_finish(&z) != 0)
            status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO,
                              "%s: error: too large for a .npz archive (over 4 GB); export to "
                              "a directory instead", out);
        else
            status = grt_write_atomic(out, z.data.p, z.data.n, e);
        if (!status && list)
            for (i = 0; i < n; i++)
                fprintf(list, "%s:%s\n", out, it[i].file);
    }
done:
    free(z.data.p);
    free(z.central.p);
    free(it);
    return status;
}
