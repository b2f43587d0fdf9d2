/*
 * rt_util.c: what every part of the runtime leans on: recording an error with
 * its exit status, allocation that gives up cleanly, a monotonic clock, byte
 * buffers, and writing a file whole or not at all (through the output
 * policy of rt_output.c).
 *
 * Errors are values (grt_err) rather than prints so that the functions under
 * them can be tested for the exact message; only grt_main prints them.
 */
#include "rt_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int grt_fail(grt_err *e, int status, int code, const char *fmt, ...)
{
    if (e && e->status == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = status;
        e->code = code;
    }
    return status;
}

void grt_report(const grt_err *e)
{
    fflush(stdout);
    fprintf(stderr, "%s\n", e->msg);
}

GRT_NORETURN static void out_of_memory(size_t n, size_t size)
{
    fflush(stdout);
    fprintf(stderr, "error: out of memory (%zu x %zu bytes)\n", n, size);
    exit(GRT_EXIT_USAGE);
}

/* n * size, or exit when it overflows. */
static size_t bytes(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        out_of_memory(n, size);
    return n && size ? n * size : 1;
}

void *grt_xmalloc(size_t n, size_t size)
{
    void *p = malloc(bytes(n, size));
    if (!p)
        out_of_memory(n, size);
    return p;
}

void *grt_xcalloc(size_t n, size_t size)
{
    void *p = calloc(1, bytes(n, size));
    if (!p)
        out_of_memory(n, size);
    return p;
}

void *grt_xrealloc(void *p, size_t n, size_t size)
{
    p = realloc(p, bytes(n, size));
    if (!p)
        out_of_memory(n, size);
    return p;
}

void *grt_xaligned(size_t size)
{
    void *p = NULL;
    /* Round up so that vector code may read the last line whole. */
    if (size > SIZE_MAX - GRT_ALIGN)
        out_of_memory(1, size);
    size = (size + GRT_ALIGN - 1) / GRT_ALIGN * GRT_ALIGN;
    if (size == 0)
        size = GRT_ALIGN;
    if (posix_memalign(&p, GRT_ALIGN, size) != 0)
        out_of_memory(1, size);
    memset(p, 0, size);
    return p;
}

char *grt_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = grt_xmalloc(n, 1);
    memcpy(p, s, n);
    return p;
}

double grt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ buffers */

unsigned char *grt_buf_room(grt_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->n)
        out_of_memory(b->n, n);
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap = cap > SIZE_MAX / 2 ? b->n + n : 2 * cap;
        b->p = grt_xrealloc(b->p, cap, 1);
        b->cap = cap;
    }
    b->n += n;
    return b->p + b->n - n;
}

void grt_buf_put(grt_buf *b, const void *p, size_t n)
{
    if (n)
        memcpy(grt_buf_room(b, n), p, n);
}

void grt_buf_printf(grt_buf *b, const char *fmt, ...)
{
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k <= 0)
        return;
    /* room for the terminator vsnprintf writes, then give it back */
    grt_buf_room(b, (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n - (size_t)k - 1, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n--;
}

void grt_put_le(unsigned char *p, uint64_t v, int n)
{
    int i;
    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t grt_get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ------------------------------------------------------------ atomic writes */

int grt_write_atomic(const char *path, const void *buf, size_t size, grt_err *e)
{
    char msg[sizeof e->msg];
    if (grt_outfile_write(path, buf, size, msg, sizeof msg))
        return 0;
    return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s", msg);
}
