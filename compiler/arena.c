/*
 * arena.c: the compilation's memory. Everything a compilation builds comes
 * from one arena and is released at once when it ends, so no pass frees, and
 * bison's error recovery cannot leak semantic values.
 */
#include "gradc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* the strictest alignment of a basic type (C99 has no max_align_t) */
typedef union Align {
    long double ld;
    long long ll;
    void *p;
    void (*fp)(void);
} Align;

typedef struct Chunk Chunk;
struct Chunk {
    Chunk *next; /* previous chunk */
    size_t used; /* bytes handed out */
    size_t size; /* bytes in data */
    Align data[];
};

struct Arena {
    Chunk *head; /* the chunk being filled */
};

GRADC_NORETURN void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gradc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        die("out of memory (%zu bytes)", size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        die("out of memory (%zu bytes)", size);
    return p;
}

Arena *arena_new(void)
{
    return xcalloc(1, sizeof(Arena));
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    while (a->head) {
        Chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t size)
{
    const size_t align = sizeof(Align);
    size = (size + align - 1) / align * align;
    if (!a->head || a->head->size - a->head->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        Chunk *c = xmalloc(sizeof(Chunk) + cap);
        c->next = a->head;
        c->used = 0;
        c->size = cap;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("arena_printf: bad format");
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void *arena_grow(Arena *a, void *old, size_t elem, int *cap, int need)
{
    if (need <= *cap)
        return old;
    int ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = arena_alloc(a, elem * (size_t)ncap);
    if (old)
        memcpy(p, old, elem * (size_t)*cap);
    *cap = ncap;
    return p;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > ((size_t)1 << 30)) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
