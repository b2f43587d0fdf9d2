/*
 * rt_output.c: the output policy (grt_output.h): which paths may be
 * written, writing them whole or in place, and removing temporary files
 * when a signal ends the process.
 *
 * Standalone: no grt_model, no grt_real, nothing of rt_internal.h, so that
 * gradc's main.c links this object too.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath: POSIX's XSI part, which glibc hides otherwise */
#endif
#include "grt_output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* "PATH: error: " and the formatted rest into err; returns 0. */
static int say(char *err, size_t n, const char *path, const char *fmt, ...)
{
    va_list ap;
    size_t k;
    if (!err || n == 0)
        return 0;
    snprintf(err, n, "%s: error: ", path);
    k = strlen(err);
    va_start(ap, fmt);
    vsnprintf(err + k, n - k, fmt, ap);
    va_end(ap);
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* The directory part of path, "." when it has none, into a malloc'd string. */
static char *dir_of(const char *path)
{
    char *dir = dup_str(path), *slash;
    if (!dir)
        return NULL;
    slash = strrchr(dir, '/');
    /* "a/b/" names b: drop trailing slashes first */
    while (slash && slash > dir && slash[1] == '\0') {
        *slash = '\0';
        slash = strrchr(dir, '/');
    }
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    return dir;
}

/* The last component of path. */
static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void copy_cut(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------- the set */

void grt_outset_init(grt_outset *s) { memset(s, 0, sizeof *s); }

void grt_outset_input(grt_outset *s, const char *path)
{
    struct stat sb;
    grt_outset_file *f;
    if (!path || !*path || strcmp(path, "-") == 0 || s->nin == GRT_OUTSET_MAX ||
        stat(path, &sb) != 0)
        return;
    f = &s->in[s->nin++];
    memset(f, 0, sizeof *f);
    f->dev = sb.st_dev;
    f->ino = sb.st_ino;
    copy_cut(f->path, sizeof f->path, path);
}

/* Where an output at path would land: the existing file (through symlinks),
 * or a new name in a directory. Returns 1, or 0 with err filled. */
static int locate(const char *path, grt_outset_file *f, struct stat *sb, int *exists, char *err,
                  size_t n)
{
    struct stat lb;
    memset(f, 0, sizeof *f);
    copy_cut(f->path, sizeof f->path, path);
    *exists = 0;
    if (!*path)
        return say(err, n, "''", "an empty file name");
    if (stat(path, sb) == 0) {
        *exists = 1;
        f->dev = sb->st_dev;
        f->ino = sb->st_ino;
        return 1;
    }
    if (errno != ENOENT)
        return say(err, n, path, "cannot write it: %s", strerror(errno));
    if (lstat(path, &lb) == 0)
        return say(err, n, path, "a symbolic link to a file that does not exist; remove it or "
                                 "name another file");
    if (path[strlen(path) - 1] == '/')
        return say(err, n, path, "no such directory (a file name cannot end in '/')");
    {
        char *dir = dir_of(path);
        struct stat db;
        int ok = dir != NULL;
        if (ok && stat(dir, &db) != 0)
            ok = say(err, n, path, "cannot write there: %s: %s", dir, strerror(errno));
        else if (ok && !S_ISDIR(db.st_mode))
            ok = say(err, n, path, "cannot write there: %s: %s", dir, strerror(ENOTDIR));
        else if (ok && access(dir, W_OK | X_OK) != 0)
            ok = say(err, n, path, "cannot write there: %s: %s", dir, strerror(errno));
        if (ok) {
            f->dev = db.st_dev;
            f->ino = db.st_ino;
            copy_cut(f->name, sizeof f->name, base_of(path));
        }
        free(dir);
        return ok;
    }
}

static int same(const grt_outset_file *a, const grt_outset_file *b)
{
    return a->dev == b->dev && a->ino == b->ino && strcmp(a->name, b->name) == 0;
}

static int check(const grt_outset *s, const char *path, grt_outset_file *f, char *err, size_t n)
{
    struct stat sb;
    int exists, i;
    if (!locate(path, f, &sb, &exists, err, n))
        return 0;
    if (!exists)
        return 1;
    if (S_ISDIR(sb.st_mode))
        return say(err, n, path, "is a directory; name a file (%s/NAME)", path);
    for (i = 0; i < s->nin; i++)
        if (same(&s->in[i], f))
            return say(err, n, path, "is an input of this run (%s); writing it would destroy it",
                       s->in[i].path);
    if (access(path, W_OK) != 0)
        return say(err, n, path, "cannot write it: %s", strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        /* replaced through a temporary file beside the file itself */
        char *real = realpath(path, NULL), *dir = real ? dir_of(real) : NULL;
        int ok = dir && access(dir, W_OK | X_OK) == 0;
        if (!ok)
            say(err, n, path, "cannot write there: %s: %s", dir ? dir : path,
                strerror(errno ? errno : ENOMEM));
        free(dir);
        free(real);
        return ok;
    }
    return 1;
}

int grt_outset_check(const grt_outset *s, const char *path, char *err, size_t n)
{
    grt_outset_file f;
    return check(s, path, &f, err, n);
}

int grt_outset_output(grt_outset *s, const char *path, char *err, size_t n)
{
    grt_outset_file f;
    int i;
    if (!check(s, path, &f, err, n))
        return 0;
    for (i = 0; i < s->nout; i++)
        if (same(&s->out[i], &f))
            return say(err, n, path, "is also written as another output of this run (%s)",
                       s->out[i].path);
    if (s->nout == GRT_OUTSET_MAX)
        return say(err, n, path, "too many outputs in one run");
    s->out[s->nout++] = f;
    return 1;
}

/* ------------------------------------------------------------ SIGXFSZ */

/* Past a file size limit write() raises SIGXFSZ, whose default action kills
 * the process; ignored while an output is open, the write fails with EFBIG
 * and is reported like a full disk. */
static int xfsz_depth;
static struct sigaction xfsz_old;

static void xfsz_ignore(void)
{
    if (xfsz_depth++ == 0) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGXFSZ, &ign, &xfsz_old);
    }
}

static void xfsz_restore(void)
{
    if (xfsz_depth > 0 && --xfsz_depth == 0)
        sigaction(SIGXFSZ, &xfsz_old, NULL);
}

/* ----------------------------------------------------------- outfiles */

int grt_outfile_open(grt_outfile *o, const char *path, char *err, size_t n)
{
    struct stat sb, lb;
    int exists = stat(path, &sb) == 0, fd;
    mode_t mode;

    memset(o, 0, sizeof *o);
    if (exists && S_ISDIR(sb.st_mode))
        return say(err, n, path, "is a directory; name a file (%s/NAME)", path);
    grt_cleanup_install();
    if (exists && !S_ISREG(sb.st_mode)) {
        /* a device or a FIFO: written into, never replaced */
        fd = open(path, O_WRONLY | O_NOCTTY);
        if (fd < 0)
            return say(err, n, path, "cannot write it: %s", strerror(errno));
        o->f = fdopen(fd, "w");
        o->path = dup_str(path);
        if (!o->f || !o->path) {
            close(fd);
            free(o->path);
            o->path = NULL;
            o->f = NULL;
            return say(err, n, path, "cannot write it: %s", strerror(ENOMEM));
        }
        o->in_place = 1;
        xfsz_ignore();
        return 1;
    }
    /* a symlink to a regular file: its target is replaced, not the link */
    o->path = exists && lstat(path, &lb) == 0 && S_ISLNK(lb.st_mode) ? realpath(path, NULL)
                                                                        : dup_str(path);
    if (!o->path)
        return say(err, n, path, "cannot write it: %s", strerror(errno ? errno : ENOMEM));
    o->tmp = malloc(strlen(o->path) + 12);
    if (!o->tmp) {
        free(o->path);
        o->path = NULL;
        return say(err, n, path, "cannot write it: %s", strerror(ENOMEM));
    }
    strcpy(o->tmp, o->path);
    strcat(o->tmp, ".tmp.XXXXXX");
    fd = mkstemp(o->tmp);
    if (fd < 0) {
        int why = errno;
        free(o->tmp);
        free(o->path);
        memset(o, 0, sizeof *o);
        return say(err, n, path, "cannot create a temporary file for it: %s", strerror(why));
    }
    grt_cleanup_add(o->tmp, 0);
    /* mkstemp makes the file 0600: give it the mode it had, or the one
     * fopen would */
    if (exists) {
        mode = sb.st_mode & 07777;
    } else {
        mode = umask(0);
        umask(mode);
        mode = 0666 & ~mode;
    }
    fchmod(fd, mode);
    o->f = fdopen(fd, "w");
    if (!o->f) {
        close(fd);
        grt_outfile_abort(o);
        return say(err, n, path, "cannot write it: %s", strerror(ENOMEM));
    }
    xfsz_ignore();
    return 1;
}

/* Makes the rename itself durable; failure here loses nothing, so it is not
 * reported. */
static void sync_dir(const char *path)
{
    char *dir = dir_of(path);
    int fd = dir ? open(dir, O_RDONLY) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

static void release(grt_outfile *o)
{
    if (o->tmp) {
        grt_cleanup_remove(o->tmp);
        free(o->tmp);
    }
    free(o->path);
    memset(o, 0, sizeof *o);
    xfsz_restore();
}

int grt_outfile_flush(grt_outfile *o)
{
    if (fflush(o->f) != 0 || ferror(o->f)) {
        if (!o->err)
            o->err = errno ? errno : EIO;
        return 0;
    }
    return 1;
}

int grt_outfile_commit(grt_outfile *o, char *err, size_t n)
{
    const char *step = "write";
    int why = 0;
    if (!o->f) {
        release(o);
        return say(err, n, "?", "no output open");
    }
    if (!grt_outfile_flush(o))
        why = o->err;
    /* a device or a FIFO may not sync: only a regular file must */
    if (!why && !o->in_place && fsync(fileno(o->f)) != 0)
        why = errno;
    if (fclose(o->f) != 0 && !why)
        why = errno ? errno : EIO;
    o->f = NULL;
    if (!why && !o->in_place) {
        step = "rename the temporary file to";
        if (rename(o->tmp, o->path) != 0)
            why = errno;
        else
            sync_dir(o->path);
    }
    if (why) {
        char path[PATH_MAX];
        if (o->tmp)
            unlink(o->tmp);
        copy_cut(path, sizeof path, o->path);
        release(o);
        return say(err, n, path, "cannot %s it: %s", step, strerror(why));
    }
    release(o);
    return 1;
}

void grt_outfile_abort(grt_outfile *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp)
        unlink(o->tmp);
    release(o);
}

int grt_outfile_write(const char *path, const void *buf, size_t size, char *err, size_t n)
{
    grt_outfile o;
    if (!grt_outfile_open(&o, path, err, n))
        return 0;
    if (size && fwrite(buf, 1, size, o.f) != size)
        o.err = errno ? errno : EIO; /* commit says why */
    return grt_outfile_commit(&o, err, n);
}

/* ---------------------------------------------------- signal cleanup */

#define CLEANUP_MAX 64
#define CLEANUP_PATH 4096

/* The names to remove; a slot is written before it is marked used, and
 * marked free before it is reused, so the handler never reads half a name. */
static char cl_path[CLEANUP_MAX][CLEANUP_PATH];
static volatile sig_atomic_t cl_kind[CLEANUP_MAX]; /* 0 free, 1 file, 2 folder */
static int cl_installed;
static struct sigaction cl_default; /* SIG_DFL, prepared before any signal */

void grt_cleanup_add(const char *path, int is_dir)
{
    size_t len = strlen(path);
    int i;
    if (len == 0 || len >= CLEANUP_PATH)
        return;
    for (i = 0; i < CLEANUP_MAX; i++)
        if (!cl_kind[i]) {
            memcpy(cl_path[i], path, len + 1);
            cl_kind[i] = is_dir ? 2 : 1;
            return;
        }
}

void grt_cleanup_remove(const char *path)
{
    int i;
    for (i = 0; i < CLEANUP_MAX; i++)
        if (cl_kind[i] && strcmp(cl_path[i], path) == 0) {
            cl_kind[i] = 0;
            return;
        }
}

/* rm -rf DIR in a child: a folder may hold files nobody registered (what a
 * C toolchain left there); fork, execve and waitpid are async-signal-safe. */
static void remove_tree(char *dir)
{
    char rm[] = "/bin/rm", rf[] = "-rf", dd[] = "--";
    char *argv[5];
    char *envp[1];
    pid_t pid;
    int st;
    argv[0] = rm;
    argv[1] = rf;
    argv[2] = dd;
    argv[3] = dir;
    argv[4] = NULL;
    envp[0] = NULL;
    pid = fork();
    if (pid == 0) {
        execve(rm, argv, envp);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
}

static void on_signal(int sig)
{
    sigset_t set;
    int i;
    /* files first, then the folders that held them */
    for (i = 0; i < CLEANUP_MAX; i++)
        if (cl_kind[i] == 1)
            unlink(cl_path[i]);
    for (i = 0; i < CLEANUP_MAX; i++)
        if (cl_kind[i] == 2 && rmdir(cl_path[i]) != 0 && errno != ENOENT)
            remove_tree(cl_path[i]);
    /* die of the same signal, as if nothing had caught it */
    sigaction(sig, &cl_default, NULL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

void grt_cleanup_install(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct sigaction sa, old;
    size_t i;
    if (cl_installed)
        return;
    cl_installed = 1;
    memset(&cl_default, 0, sizeof cl_default);
    cl_default.sa_handler = SIG_DFL;
    sigemptyset(&cl_default.sa_mask);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
}
