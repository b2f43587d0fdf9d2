/*
 * rt_util.c: what every part of the runtime leans on: recording an error with
 * its exit status, allocation that gives up cleanly, and a monotonic clock.
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
