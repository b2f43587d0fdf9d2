/*
 * grt_output.h: the output policy of gradc's programs, in one place: what
 * may be written, and how.
 *
 * A run (a training, an export, a build of gradc itself) has inputs (the
 * model, data files, a parameter file being resumed) and outputs (parameter
 * files, logs, plots, executables). The rules:
 *
 *   - an output is never an input of the same run, whatever name reaches
 *     it (hard links and symbolic links too): `--save data.csv` is refused;
 *   - an output is never a directory, and must be writable: both are
 *     checked before any work starts, so a typo costs no training run;
 *   - a regular file is written whole or not at all: a temporary file in
 *     its directory, fsync'd, renamed over it at the end (a failure leaves
 *     the old file as it was);
 *   - anything else (a character device such as /dev/null, a FIFO) is
 *     opened and written in place, never replaced by a regular file;
 *   - temporary files and folders are removed when SIGINT, SIGTERM, SIGHUP
 *     or SIGPIPE ends the process;
 *   - past a file size limit (ulimit -f) a write fails with "File too
 *     large" instead of killing the process (SIGXFSZ is ignored while an
 *     output is open).
 *
 * Standalone C99 and POSIX: it knows nothing of models, so gradc's own
 * main.c links it (build/rt/rt_output.o) as well as the runtime. Error
 * messages go into a caller's buffer as one line, "PATH: error: ...".
 */
#ifndef GRT_OUTPUT_H
#define GRT_OUTPUT_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* How many inputs and outputs a set holds; more are ignored (inputs) or
 * refused (outputs). */
#define GRT_OUTSET_MAX 32

/* One file of a run, as the file system identifies it. */
typedef struct grt_outset_file {
    dev_t dev;        /* the file's device, or its directory's for a new name */
    ino_t ino;        /* the file's inode, or its directory's for a new name */
    char name[256];   /* a new name's last component, "" for an existing file */
    char path[256];   /* the path as given, for messages (cut to fit) */
} grt_outset_file;

/* The inputs of a run, and the outputs claimed so far. */
typedef struct grt_outset {
    int nin;                              /* inputs recorded */
    grt_outset_file in[GRT_OUTSET_MAX];   /* them */
    int nout;                             /* outputs claimed (grt_outset_output) */
    grt_outset_file out[GRT_OUTSET_MAX];  /* them */
} grt_outset;

void grt_outset_init(grt_outset *s);
/* Records an input of this run: the model, a data file, a params file
 * being resumed. A path that does not exist (or "-") records nothing. */
void grt_outset_input(grt_outset *s, const char *path);
/* Before any work: may path be written as an output? Not an input of this
 * run (same file through hard links and symlinks too), not a directory,
 * writable (a new name in a writable directory, a writable regular file in
 * a writable directory, or a non-regular file such as a device node or
 * FIFO, which will be written in place, never replaced). Returns 1, or 0
 * with "PATH: error: ..." in err. */
int grt_outset_check(const grt_outset *s, const char *path, char *err, size_t n);
/* grt_outset_check, and then claims path as an output of the run: a later
 * output at the same place (the same file, or the same new name in the same
 * directory) is refused, so two outputs cannot overwrite each other. */
int grt_outset_output(grt_outset *s, const char *path, char *err, size_t n);

/* An output being written. */
typedef struct grt_outfile {
    FILE *f;       /* write here */
    char *path;    /* the file committed (a symlink's target), malloc'd */
    char *tmp;     /* the temporary file, malloc'd; NULL when in place */
    int in_place;  /* a non-regular file written directly */
    int err;       /* errno of the first failed write seen, 0: none */
} grt_outfile;

/* Opens an output: a regular file (or a new name) through a temporary file
 * PATH.tmp.XXXXXX in its directory (mode 0666 & ~umask for a new file, the
 * old file's mode otherwise), registered for removal on a signal; a
 * non-regular file (/dev/null, a FIFO, a character device) opened and
 * written in place. Returns 1, or 0 with the reason in err. */
int grt_outfile_open(grt_outfile *o, const char *path, char *err, size_t n);
/* Flushes what was written to o->f; returns 1, or 0 and records why in
 * o->err (commit reports it). */
int grt_outfile_flush(grt_outfile *o);
/* Ends the output: flushes, fsyncs, closes and renames the temporary file
 * over the path, then fsyncs the directory. Returns 1; or 0 with the reason
 * in err ("PATH: error: cannot write it: No space left on device"), the
 * temporary file removed and the old file untouched. */
int grt_outfile_commit(grt_outfile *o, char *err, size_t n);
/* Ends the output without a trace: the temporary file is removed. */
void grt_outfile_abort(grt_outfile *o);
/* path written whole or not at all (grt_outfile_open, write, commit).
 * Returns 1, or 0 with the reason in err. */
int grt_outfile_write(const char *path, const void *buf, size_t size, char *err, size_t n);

/* Temporary files (is_dir 0) and folders (is_dir 1) to remove if SIGINT,
 * SIGTERM, SIGHUP or SIGPIPE ends the process. The handler removes them
 * (async-signal-safe: unlink and rmdir of names kept in a static table;
 * the files of a folder registered in it first, whatever else it holds by
 * `rm -rf` run with fork and execve) and then dies of the same signal. A
 * path longer than the table's slots (4095 bytes) is not registered. */
void grt_cleanup_add(const char *path, int is_dir);
void grt_cleanup_remove(const char *path);
/* Installs the handler for those of the four signals whose action is the
 * default (one ignored, as nohup does with SIGHUP, stays ignored). Called
 * by grt_outfile_open; calling it again does nothing. */
void grt_cleanup_install(void);

#endif
