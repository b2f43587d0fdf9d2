/*
 * main.c: the gradc command line, and the pipeline stated once, in order:
 *
 *   read -> parse (grammar/) -> check and build the forward graph (sema.c)
 *   -> simplify the forward graph (stable forms before differentiation)
 *   -> reverse mode (grad.c) -> simplify both -> plan each function (plan.c)
 *   -> emit (emit_c.c), and for an executable, compile with the runtime.
 *
 * --emit=KIND stops after the stage it names and prints it. Outputs follow
 * the policy of runtime/grt_output.h (never an input, checked before the
 * work, written whole or not at all, nothing left behind by a signal).
 */
#include "gradc.h"
#include "grt_output.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GRADC_REVISION
#define GRADC_REVISION "unknown"
#endif

typedef struct Options {
    const char *input;      /* the model file, "-" for standard input */
    const char *output;     /* -o */
    const char *emit;       /* --emit=KIND */
    const char *mode;       /* the flag that chose what to write, as given:
                               -c, --check, --emit=KIND or --main (NULL: an
                               executable) */
    int c_only;             /* -c */
    int check;              /* --check */
    int main_glue;          /* --main: MODEL_main.c only */
    int opt;                /* -O level */
    int batch;              /* --batch N, 0: from the model */
    int debug;              /* -g */
    const char *cc;         /* --cc */
    const char *cflags;     /* --cflags */
    int quiet, verbose;     /* -q, -v */
    int werror;             /* -Werror */
    int explain;            /* --explain */
    int scalar;             /* --scalar */
    int predict_only;       /* --predict-only */
    int mpi;                /* --mpi: mpicc and the MPI runtime (docs/mpi.md) */
    int threads;            /* --threads N: OpenMP, N threads by default */
    const char *embed;      /* --embed-params PARAMS */
    const char *exe_flag;   /* the first flag given that only an executable
                               uses (--mpi, --threads, --cc, --cflags) */
    const char *source;     /* the name diagnostics and comments give the
                               model: the path, or <stdin> */
    char cmdline[1024];     /* as given, for generated headers */
} Options;

static const char *const emit_kinds[] = {"tokens", "ast", "graph", "grad", "c", "h", "dot", "dot-forward",
                                          "dot-backward", "stats", NULL};

static void usage(FILE *f)
{
    fputs("usage: gradc [options] FILE.nn\n"
          "\n"
          "  gradc FILE.nn               build the training executable ./FILE\n"
          "  gradc FILE.nn -o PATH       ... at PATH\n"
          "  gradc -c FILE.nn [-o DIR | -o NAME.c]\n"
          "                              write MODEL.c and MODEL.h only (for other builds)\n"
          "  gradc --main FILE.nn [-o DIR | -o NAME_main.c]\n"
          "                              write MODEL_main.c, the training program's main\n"
          "                              (cc MODEL.c MODEL_main.c $(pkg-config --cflags\n"
          "                              --libs gradc) builds the executable)\n"
          "  gradc --emit=KIND FILE.nn [-o FILE]\n"
          "                              print one stage and stop: tokens, ast, graph,\n"
          "                              grad, c, h, dot (dot-forward, dot-backward),\n"
          "                              stats\n"
          "  gradc --check FILE.nn       parse and check only\n"
          "\n"
          "FILE.nn '-' reads the model from standard input (named <stdin> in\n"
          "diagnostics, model 'stdin' without a model line).\n"
          "\n"
          "options:\n"
          "  -o PATH             the output: the executable, -c's directory or .c file,\n"
          "                      --main's directory or file, --emit's file\n"
          "  -O0 | -O1 | -O2     graph simplification (default -O2)\n"
          "  --batch N           compile for batches of N (default: the train block's)\n"
          "  -g                  #line directives back to FILE.nn\n"
          "  --scalar            fully unrolled scalar code, one variable per scalar\n"
          "                      (for tiny models)\n"
          "  --predict-only      with -c: only init and predict, no gradient code\n"
          "  --embed-params P    with -c: the trained params of file P in the source\n"
          "  --mpi               build a data-parallel executable with mpicc for\n"
          "                      mpirun -np P ./FILE train ... (docs/mpi.md)\n"
          "  --cc CC             C compiler for executables (default $CC, else cc)\n"
          "  --cflags \"...\"      flags for it (default -O2 -march=native)\n"
          "  --threads N         build the executable with OpenMP, N threads\n"
          "                      (OMP_NUM_THREADS overrides): each batch split\n"
          "                      among them, or each matrix product (docs/kernels.md)\n"
          "  --explain           print every rewrite the simplifier applies\n"
          "  -q                  quiet: no warnings\n"
          "  -Werror             warnings are errors (exit status 1, nothing written)\n"
          "  -v                  verbose: the C compiler's command line\n"
          "  --version, --help\n"
          "\n"
          "exit status: 0 success, 1 errors in the model, 2 bad command line or I/O failure\n",
          f);
}

GRADC_NORETURN static void bad_usage(const char *fmt, const char *arg)
{
    fputs("gradc: error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(run 'gradc --help' for usage)\n", stderr);
    exit(2);
}

/* two flags that cannot both hold, named as they were given */
GRADC_NORETURN static void conflict(const char *a, const char *b, const char *why)
{
    fprintf(stderr, "gradc: error: '%s' and '%s' do not go together: %s\n(run 'gradc --help' for usage)\n",
            a, b, why);
    exit(2);
}

/* an option's whole-number value from 1 to max, or a usage error naming it */
static int whole_number(const char *option, const char *v, long max)
{
    char *end, msg[96];
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 1 || n > max) {
        snprintf(msg, sizeof msg, "%s needs a whole number from 1 to %ld, not '%%s'", option, max);
        bad_usage(msg, v);
    }
    return (int)n;
}

static int is_emit_kind(const char *k)
{
    for (int i = 0; emit_kinds[i]; i++)
        if (!strcmp(emit_kinds[i], k))
            return 1;
    return 0;
}

/* -c, --check, --emit=KIND and --main each choose what gradc writes: one of
 * them at most (the same one twice is fine) */
static void set_mode(Options *o, const char *flag)
{
    if (o->mode && strcmp(o->mode, flag) != 0)
        conflict(o->mode, flag, "each chooses what gradc writes; give one");
    o->mode = flag;
}

static void parse_args(int argc, char **argv, Options *o)
{
    memset(o, 0, sizeof *o);
    o->opt = 2;
    size_t k = 0;
    for (int i = 0; i < argc && k < sizeof o->cmdline - 1; i++) {
        const char *w = argv[i];
        if (i == 0 && strrchr(w, '/')) /* the program, without the directory */
            w = strrchr(w, '/') + 1;
        k += (size_t)snprintf(o->cmdline + k, sizeof o->cmdline - k, "%s%s", i ? " " : "", w);
    }
    const char *quiet_flag = NULL, *verbose_flag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (bad_usage("option '%s' needs an argument", a), ""))
#define EXE_ONLY() (o->exe_flag = o->exe_flag ? o->exe_flag : a)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("gradc %s (revision %s)\n", GRADC_VERSION, GRADC_REVISION);
            exit(0);
        } else if (!strcmp(a, "-c")) {
            set_mode(o, a);
            o->c_only = 1;
        } else if (!strcmp(a, "-o")) {
            const char *v = NEXT();
            if (o->output && strcmp(o->output, v) != 0)
                bad_usage("-o is given twice ('%s' and another)", v);
            o->output = v;
        } else if (!strncmp(a, "--emit=", 7) || !strcmp(a, "--emit")) {
            /* --emit KIND is accepted too, but only with a kind after it, so
             * that `gradc --emit seed.nn` does not take seed.nn for a kind */
            const char *kind = a[6] == '=' ? a + 7 : i + 1 < argc && is_emit_kind(argv[i + 1]) ? argv[++i] : NULL;
            if (!kind || !*kind)
                bad_usage("%s needs a kind (--emit=KIND): tokens, ast, graph, grad, c, h, dot, dot-forward, dot-backward or stats", "--emit");
            if (!is_emit_kind(kind))
                bad_usage("unknown --emit kind '%s'; expected tokens, ast, graph, grad, c, h, dot, dot-forward, dot-backward or stats", kind);
            if (a[6] == '=') {
                set_mode(o, a);
            } else { /* named as --emit=KIND in messages */
                char *flag = xmalloc(strlen(kind) + 8);
                sprintf(flag, "--emit=%s", kind);
                set_mode(o, flag);
            }
            o->emit = kind;
        } else if (!strcmp(a, "--check")) {
            set_mode(o, a);
            o->check = 1;
        } else if (!strcmp(a, "--main")) {
            set_mode(o, a);
            o->main_glue = 1;
        } else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
            o->opt = a[2] - '0';
        } else if (!strcmp(a, "--batch") || !strncmp(a, "--batch=", 8)) {
            o->batch = whole_number("--batch", a[7] == '=' ? a + 8 : NEXT(), 1 << 20);
        } else if (!strcmp(a, "-g")) {
            o->debug = 1;
        } else if (!strcmp(a, "--cc")) {
            EXE_ONLY();
            o->cc = NEXT();
        } else if (!strcmp(a, "--cflags")) {
            EXE_ONLY();
            o->cflags = NEXT();
        } else if (!strcmp(a, "--explain")) {
            o->explain = 1;
        } else if (!strcmp(a, "-q")) {
            o->quiet = 1;
            quiet_flag = a;
        } else if (!strcmp(a, "-v")) {
            o->verbose = 1;
            verbose_flag = a;
        } else if (!strcmp(a, "-Werror")) {
            o->werror = 1;
        } else if (!strcmp(a, "--scalar")) {
            o->scalar = 1;
        } else if (!strcmp(a, "--predict-only")) {
            o->predict_only = 1;
        } else if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            EXE_ONLY();
            o->threads = whole_number("--threads", a[9] == '=' ? a + 10 : NEXT(), 1024);
        } else if (!strcmp(a, "--mpi")) {
            EXE_ONLY();
            o->mpi = 1;
        } else if (!strcmp(a, "--embed-params")) {
            o->embed = NEXT();
        } else if (a[0] == '-' && a[1]) {
            bad_usage("unknown option '%s'", a);
        } else if (o->input) {
            bad_usage("more than one model file ('%s')", a);
        } else {
            o->input = a;
        }
#undef NEXT
#undef EXE_ONLY
    }
    if (!o->input)
        bad_usage("%s", "no model file given (give '-' to read it from standard input)");
    o->source = strcmp(o->input, "-") ? o->input : "<stdin>";
    if (o->mode && o->exe_flag)
        conflict(o->exe_flag, o->mode, "the first is for building an executable, which the second does not do");
    if (o->check && o->output)
        conflict("--check", "-o", "--check writes nothing");
    if (quiet_flag && verbose_flag)
        conflict(quiet_flag, verbose_flag, "quiet and verbose");
    int to_c = o->c_only || (o->emit && (!strcmp(o->emit, "c") || !strcmp(o->emit, "h")));
    if (o->predict_only && !to_c)
        bad_usage("%s goes with -c (or --emit=c, --emit=h): an executable needs the gradient", "--predict-only");
    if (o->embed && !to_c)
        bad_usage("%s goes with -c (or --emit=c, --emit=h)", "--embed-params");
    if (o->scalar && o->predict_only)
        conflict("--scalar", "--predict-only", "--scalar writes the training functions");
}
/* the file's base name without directory and .nn */
static char *base_name(Arena *a, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 3 && !strcmp(b + n - 3, ".nn"))
        n -= 3;
    return arena_strndup(a, b, n);
}

/* ------------------------------------------------------------ reading */

/* The model's text: the file, or standard input for "-". A UTF-8 byte-order
 * mark at the start is skipped (*skip says how many bytes), so that columns
 * count from the first character a person sees. NULL after a message. */
static char *read_model(const Options *o, size_t *len, size_t *skip)
{
    char *src = NULL;
    *skip = 0;
    if (!strcmp(o->input, "-")) {
        size_t cap = 1 << 16, n = 0, got;
        src = xmalloc(cap + 1);
        while ((got = fread(src + n, 1, cap - n, stdin)) > 0)
            if ((n += got) == cap)
                src = xrealloc(src, (cap *= 2) + 1);
        if (ferror(stdin)) {
            fprintf(stderr, "gradc: error: cannot read the model from standard input: %s\n", strerror(errno));
            free(src);
            return NULL;
        }
        src[n] = 0;
        *len = n;
    } else {
        struct stat st;
        if (stat(o->input, &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "gradc: error: '%s' is a directory, not a model file\n", o->input);
            return NULL;
        }
        if (!(src = read_file(o->input, len))) {
            fprintf(stderr, "gradc: error: cannot read '%s': %s\n", o->input, strerror(errno));
            return NULL;
        }
    }
    if (*len >= 3 && !memcmp(src, "\xef\xbb\xbf", 3))
        *skip = 3;
    return src;
}

/* ------------------------------------------------------- diagnostics */

/* With -q or -Werror the front end's diagnostics go to a temporary file
 * first (they all come from the scanner, the parser and sema), and are
 * replayed here: -q drops each warning with its notes; -Werror prints it as
 * an error, as gcc does. */
static void replay_diagnostics(FILE *buf, const char *name, const Options *o)
{
    size_t nlen = strlen(name), cap = 0;
    char *line = NULL;
    int keep = 1;
    ssize_t n;
    fflush(buf);
    rewind(buf);
    while ((n = getline(&line, &cap, buf)) > 0) {
        if (!strncmp(line, name, nlen) && line[nlen] == ':') {
            const char *p = line + nlen + 1;
            p += strspn(p, "0123456789:"); /* LINE:COL: */
            p += *p == ' ';
            if (!strncmp(p, "warning: ", 9)) {
                keep = o->werror || !o->quiet;
                if (keep && o->werror) {
                    fwrite(line, 1, (size_t)(p - line), stderr);
                    fprintf(stderr, "error: %.*s [-Werror]\n", (int)(strcspn(p + 9, "\n")), p + 9);
                    continue;
                }
            } else if (strncmp(p, "note: ", 6) != 0) {
                keep = 1;
            }
        }
        if (keep)
            fwrite(line, 1, (size_t)n, stderr);
    }
    free(line);
    fclose(buf);
}

/* ------------------------------------------------------------ output */

/* The outputs follow the policy of runtime/grt_output.h, shared with the
 * executables: never an input of this run, never a directory, checked
 * writable before the work; a regular file through a temporary file beside
 * it, renamed into place on commit (a failure leaves the old file or none);
 * a device node or FIFO written into; temporary files and folders removed
 * when a signal ends gradc. */
static grt_outset g_outs;
static grt_outfile g_out, g_hout; /* the outputs being written (-c: .c, .h) */
static const char *g_builddir;   /* the temporary build folder, while it exists */

static void rm_tree(const char *dir);

/* at exit, whatever the path to it (an internal error's die() too): no
 * temporary file or folder stays behind */
static void leave_nothing(void)
{
    if (g_out.f)
        grt_outfile_abort(&g_out);
    if (g_hout.f)
        grt_outfile_abort(&g_hout);
    if (g_builddir)
        rm_tree(g_builddir);
}

/* claims path as an output of this run and opens it, or says why not */
static int open_output(grt_outfile *f, const char *path)
{
    char err[PATH_MAX + 256];
    if (grt_outset_output(&g_outs, path, err, sizeof err) && grt_outfile_open(f, path, err, sizeof err))
        return 1;
    fprintf(stderr, "%s\n", err);
    return 0;
}

/* commits f; an executable gets x wherever its mode has r */
static int commit_output(grt_outfile *f, int executable)
{
    char err[PATH_MAX + 256];
    struct stat st;
    if (executable && !f->in_place && fstat(fileno(f->f), &st) == 0)
        fchmod(fileno(f->f), (st.st_mode & 07777) | ((st.st_mode & 0444) >> 2));
    if (grt_outfile_commit(f, err, sizeof err))
        return 1;
    fprintf(stderr, "%s\n", err);
    return 0;
}

typedef void (*Writer)(Model *m, Plan *plans, const EmitOptions *e, FILE *f);

static void w_c(Model *m, Plan *plans, const EmitOptions *e, FILE *f) { emit_c(m, plans, e, f); }
static void w_h(Model *m, Plan *plans, const EmitOptions *e, FILE *f) { emit_h(m, plans, e, f); }
static void w_main(Model *m, Plan *plans, const EmitOptions *e, FILE *f)
{
    (void)e;
    emit_main(m, plans, f);
}

/* Writes what w writes, with its `#include "MODEL.h"` naming header instead
 * when the header is written under another name (-c -o NAME.c, and the
 * short names of the temporary build folder). */
static void write_with_header(Model *m, Plan *plans, const EmitOptions *e, Writer w, const char *header, FILE *f)
{
    char *text = NULL, want[PATH_MAX + 16];
    size_t len = 0;
    snprintf(want, sizeof want, "%s.h", m->cname);
    FILE *mem = header && strcmp(header, want) ? open_memstream(&text, &len) : NULL;
    if (!mem) {
        w(m, plans, e, f);
        return;
    }
    w(m, plans, e, mem);
    fclose(mem);
    snprintf(want, sizeof want, "#include \"%s.h\"\n", m->cname);
    char *at = strstr(text, want);
    if (at) {
        fwrite(text, 1, (size_t)(at - text), f);
        fprintf(f, "#include \"%s\"\n", header);
        fputs(at + strlen(want), f);
    } else {
        fwrite(text, 1, len, f);
    }
    free(text);
}

/* The C files' names and directory for -c and --main: -o DIR, or -o NAME.c
 * (-c writes NAME.h beside it); the model's name in the current directory
 * by default. NULL after a message. */
static const char *c_output(Arena *a, const Options *o, const char *deflt)
{
    const char *out = o->output;
    struct stat st;
    size_t n = out ? strlen(out) : 0;
    if (out && n > 2 && !strcmp(out + n - 2, ".c") && out[n - 3] != '/' && !(stat(out, &st) == 0 && S_ISDIR(st.st_mode)))
        return out;
    const char *dir = out ? out : ".";
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "gradc: error: '%s' is %s (with %s, -o names a directory or a file ending in .c)\n", dir,
                stat(dir, &st) != 0 ? "not there" : "neither a directory nor a .c file", o->mode);
        return NULL;
    }
#ifndef NAME_MAX
#define NAME_MAX 255
#endif
    if (strlen(deflt) > NAME_MAX) {
        fprintf(stderr, "gradc: error: the file name '%.20s...%s' (from the model's name, %zu characters) is too long for "
                        "a file; name the output with -o FILE.c\n", deflt, deflt + strlen(deflt) - 8, strlen(deflt));
        return NULL;
    }
    return arena_printf(a, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", deflt);
}

/* ------------------------------------------------------ the runtime */

/* Finds the runtime: $GRADC_RUNTIME_DIR, the build tree beside the gradc
 * binary (build/gradc with runtime/ next to build/), or the installed tree
 * (PREFIX/bin/gradc with PREFIX/lib/gradc and PREFIX/include/gradc). */
static int find_runtime(Arena *a, char **libdir, char **incdir)
{
    const char *env = getenv("GRADC_RUNTIME_DIR");
    struct stat st;
    if (env && *env) {
        *libdir = arena_strdup(a, env);
        *incdir = arena_strdup(a, env);
        return 1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = 0;
    char *lib = arena_printf(a, "%s/libgradcrt.a", exe);
    char *hdr = arena_printf(a, "%s/../runtime/gradc_rt.h", exe);
    if (stat(lib, &st) == 0 && stat(hdr, &st) == 0) {
        *libdir = arena_strdup(a, exe);
        *incdir = arena_printf(a, "%s/../runtime", exe);
        return 1;
    }
    lib = arena_printf(a, "%s/../lib/gradc/libgradcrt.a", exe);
    hdr = arena_printf(a, "%s/../include/gradc/gradc_rt.h", exe);
    if (stat(lib, &st) == 0 && stat(hdr, &st) == 0) {
        *libdir = arena_printf(a, "%s/../lib/gradc", exe);
        *incdir = arena_printf(a, "%s/../include/gradc", exe);
        return 1;
    }
    return 0;
}

/* splits s on white space into argv (no quoting: flags with spaces are rare) */
static int split_words(Arena *a, const char *s, char **argv, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        argv[n++] = arena_strndup(a, b, (size_t)(s - b));
    }
    return n;
}

static int run(char **argv, int verbose)
{
    if (verbose) {
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "gradc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* removes the build folder and the files in it (it holds no folders) */
static void rm_tree(const char *dir)
{
    char path[PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The executable: the generated files under short fixed names in a temporary
 * folder (a model's name may be as long as a file name can be), compiled
 * there, and the result copied into the output file. */
static int build_executable(Arena *a, Model *m, Plan *plans, const Options *o, const EmitOptions *e, grt_outfile *out)
{
    char *libdir, *incdir;
    if (!find_runtime(a, &libdir, &incdir)) {
        fprintf(stderr, "gradc: error: cannot find the gradc runtime (libgradcrt.a and gradc_rt.h); "
                        "set GRADC_RUNTIME_DIR\n");
        return 0;
    }
    struct stat mst;
    if (o->mpi && stat(arena_printf(a, "%s/libgradcrt_mpi%s.a", libdir, m->is_double ? "_d" : ""),
                       &mst) != 0) {
        fprintf(stderr, "gradc: error: --mpi: no MPI runtime (libgradcrt_mpi%s.a) in %s; install "
                        "libopenmpi-dev and openmpi-bin, then run make\n",
                m->is_double ? "_d" : "", libdir);
        return 0;
    }
    const char *tmpbase = getenv("TMPDIR");
    char *dir = arena_printf(a, "%s/gradc.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "gradc: error: cannot make a temporary directory: %s\n", strerror(errno));
        return 0;
    }
    grt_cleanup_add(dir, 1); /* removed, whatever it holds, if a signal ends gradc */
    g_builddir = dir;        /* and at exit */
    static const char *const files[] = {"model.c", "model.h", "main.c"};
    static const Writer writers[] = {w_c, w_h, w_main};
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
        grt_outfile f;
        char err[PATH_MAX + 256];
        ok = grt_outfile_open(&f, arena_printf(a, "%s/%s", dir, files[i]), err, sizeof err);
        if (ok) {
            write_with_header(m, plans, e, writers[i], "model.h", f.f);
            ok = grt_outfile_commit(&f, err, sizeof err);
        }
        if (!ok)
            fprintf(stderr, "%s\n", err);
    }
    /* With threads, a model whose batches the runtime splits among them
     * (threads_split_batch) has its own code compiled apart without OpenMP:
     * it runs on one thread per part. Others share their products. */
    int apart = o->threads && threads_split_batch(m);
    char *argv[128], *exe = arena_printf(a, "%s/exe", dir);
    int n = 0, rc;
    const char *cc = o->cc ? o->cc : getenv(o->mpi ? "MPICC" : "CC");
    n += split_words(a, cc && *cc ? cc : o->mpi ? "mpicc" : "cc", argv + n, 8);
    n += split_words(a, o->cflags ? o->cflags : "-O2 -march=native", argv + n, 64);
    argv[n++] = "-std=c99";
    if (m->is_double)
        argv[n++] = "-DGRT_DOUBLE";
    argv[n++] = arena_printf(a, "-I%s", dir);
    argv[n++] = arena_printf(a, "-I%s", incdir);
    if (apart && ok) {
        int k = n;
        argv[k++] = "-c";
        argv[k++] = arena_printf(a, "%s/model.c", dir);
        argv[k++] = "-o";
        argv[k++] = arena_printf(a, "%s/model.o", dir);
        argv[k] = NULL;
        rc = run(argv, o->verbose);
        if (rc != 0) {
            fprintf(stderr, "gradc: error: the C compiler failed (exit %d) on the code generated from '%s'\n", rc,
                    o->source);
            ok = 0;
        }
    }
    if (o->threads) {
        argv[n++] = "-fopenmp";
        argv[n++] = arena_printf(a, "-DGRADC_THREADS=%d", o->threads);
    }
    argv[n++] = arena_printf(a, apart ? "%s/model.o" : "%s/model.c", dir);
    argv[n++] = arena_printf(a, "%s/main.c", dir);
    argv[n++] = arena_printf(a, "%s/libgradcrt%s%s.a", libdir, o->mpi ? "_mpi" : "", m->is_double ? "_d" : "");
    argv[n++] = "-lz";
    argv[n++] = "-lm";
    argv[n++] = "-o";
    argv[n++] = exe;
    argv[n] = NULL;
    rc = ok ? run(argv, o->verbose) : 0;
    if (ok && rc != 0) {
        fprintf(stderr, "gradc: error: the C compiler failed (exit %d) on the code generated from '%s'\n", rc,
                o->source);
        ok = 0;
    }
    FILE *in = ok ? fopen(exe, "rb") : NULL;
    if (ok && !in) {
        fprintf(stderr, "gradc: error: cannot read '%s': %s\n", exe, strerror(errno));
        ok = 0;
    }
    if (in) {
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, got, out->f);
        fclose(in);
    }
    rm_tree(dir);
    grt_cleanup_remove(dir);
    g_builddir = NULL;
    return ok;
}

/* ------------------------------------------------------- the pipeline */

int main(int argc, char **argv)
{
    static Options o; /* static: what it points to stays reachable to the end */
    parse_args(argc, argv, &o);
    Arena *a = arena_new();
    grt_outset_init(&g_outs);
    grt_outset_input(&g_outs, o.input); /* "-" records nothing */
    if (o.embed)
        grt_outset_input(&g_outs, o.embed);
    /* the executable's path, when known without the model's name, is
     * checked before any work: `gradc mymodel` would write ./mymodel over
     * its model */
    const char *exe = o.mode ? NULL : o.output ? o.output
                      : strcmp(o.input, "-") ? arena_printf(a, "./%s", base_name(a, o.input)) : NULL;
    size_t len, skip;
    char *src = read_model(&o, &len, &skip);
    if (!src) {
        arena_free(a);
        return 2;
    }
    char err[PATH_MAX + 256];
    if (exe && !grt_outset_check(&g_outs, exe, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        if (!o.output)
            fprintf(stderr, "gradc: note: the executable is named after the model file without .nn; "
                            "name it with -o PATH\n");
        free(src);
        arena_free(a);
        return 2;
    }
    FILE *diags = o.quiet || o.werror ? tmpfile() : NULL;
    Diag d;
    diag_init(&d, o.source, src + skip, len - skip);
    d.color = 0;
    if (diags)
        d.out = diags;
    int status = 0;
    EmbeddedParams ep = {0};
    grt_outfile *out = &g_out, *hout = &g_hout;
    atexit(leave_nothing);
    FILE *text = stdout; /* --emit's output */
    int front_end = o.emit && (!strcmp(o.emit, "tokens") || !strcmp(o.emit, "ast"));

    if (o.emit && o.output) {
        if (!open_output(out, o.output)) {
            status = 2;
            goto done;
        }
        text = out->f;
    }
    Ast *ast = NULL;
    Model *m = NULL;
    if (o.emit && !strcmp(o.emit, "tokens")) {
        dump_tokens(a, &d, text);
    } else {
        ast = parse_source(a, &d);
        if (o.emit && !strcmp(o.emit, "ast"))
            ast_dump(ast, text);
        else
            m = sema_check(a, &d, ast, strcmp(o.input, "-") ? base_name(a, o.input) : "stdin");
    }
    /* --scalar refuses the ops it cannot write out where the model uses
     * them, before any output is opened */
    if (m && o.scalar)
        scalar_check_ops(m, &d);
    if (diags) {
        replay_diagnostics(diags, o.source, &o);
        d.out = stderr; /* what comes later (the plan's limits) goes straight out */
    }
    if (d.errors || (o.werror && d.warnings) || (!front_end && !m)) {
        status = 1;
        goto done;
    }
    if (front_end || o.check)
        goto done;
    if (o.batch)
        m->batch = o.batch;

    /* the outputs, opened (so checked writable) before the work */
    const char *cpath = NULL, *hpath = NULL, *hname = NULL;
    if (o.c_only) {
        if (!(cpath = c_output(a, &o, arena_printf(a, "%s.c", m->cname)))) {
            status = 2;
            goto done;
        }
        size_t n = strlen(cpath);
        hpath = arena_printf(a, "%.*s.h", (int)(n - 2), cpath);
        hname = strrchr(hpath, '/') ? strrchr(hpath, '/') + 1 : hpath;
        if (!open_output(out, cpath) || !open_output(hout, hpath)) {
            status = 2;
            goto done;
        }
    } else if (o.main_glue) {
        if (!(cpath = c_output(a, &o, arena_printf(a, "%s_main.c", m->cname))) || !open_output(out, cpath)) {
            status = 2;
            goto done;
        }
    } else if (!o.emit) {
        if (!exe)
            exe = arena_printf(a, "./%s", m->cname);
        if (!open_output(out, exe)) {
            status = 2;
            goto done;
        }
    }

    FILE *explain = o.explain ? stderr : NULL;
    simplify(m, o.opt, explain); /* stable forms before differentiation */
    if (o.emit && !strcmp(o.emit, "graph") && o.opt == 0) {
        emit_graph(m, text, 0);
        goto done;
    }
    if (o.predict_only) { /* no gradient: no backward graph at all */
        m->grads = arena_alloc(a, sizeof(Ref) * (size_t)(m->nparams + 1));
        m->adjs = arena_alloc(a, sizeof(Ref) * (size_t)(m->nparams + 1));
    } else {
        grad_build(m);
    }
    simplify(m, o.opt, explain);
    if (o.emit && !strcmp(o.emit, "graph")) {
        emit_graph(m, text, 1);
        goto done;
    }
    if (o.emit && !strcmp(o.emit, "grad")) {
        emit_grad(m, text);
        goto done;
    }
    if (o.scalar) {
        char why[160];
        if (!scalar_check(m, why, sizeof why)) {
            fprintf(stderr, "gradc: error: %s: %s\n", o.source, why);
            status = 2;
            goto done;
        }
    }
    Plan plans[FN_COUNT];
    for (int i = 0; i < FN_COUNT; i++)
        plan_build(m, (FnKind)i, &plans[i]);
    static const char *const fn_name[FN_COUNT] = {"loss", "loss_grad", "predict"};
    for (int i = 0; i < FN_COUNT; i++)
        if (plans[i].too_big) {
            Node *x = N(&m->g, plans[i].too_big);
            char sh[128];
            diag_error(&d, x->loc,
                       "at a batch of %d, %s() would need a workspace of 2^63 bytes or more, more "
                       "than C can address (this value alone, %s, takes %.3g bytes); use a smaller batch",
                       m->batch, fn_name[i], shape_str(x->shape, sh, sizeof sh),
                       (double)shape_numel_static(x->shape) * (m->is_double ? 8 : 4) *
                           (shape_has_batch(x->shape) ? m->batch : 1));
            status = 1;
            goto done;
        }
    EmitOptions eo = {o.debug, o.source, o.cmdline, o.scalar, o.predict_only, NULL};
    if (o.embed) {
        if (!params_file_read(m, o.embed, &ep, err, sizeof err)) {
            fprintf(stderr, "gradc: error: %s\n", err);
            status = 2;
            goto done;
        }
        eo.embed = &ep;
    }
    if (o.emit) {
        if (!strcmp(o.emit, "c"))
            emit_c(m, plans, &eo, text);
        else if (!strcmp(o.emit, "h"))
            emit_h(m, plans, &eo, text);
        else if (!strncmp(o.emit, "dot", 3))
            emit_dot(m, text, o.emit + 3);
        else
            emit_stats(m, plans, text);
    } else if (o.c_only) {
        write_with_header(m, plans, &eo, w_c, hname, out->f);
        w_h(m, plans, &eo, hout->f);
        if (!commit_output(hout, 0) || !commit_output(out, 0))
            status = 2;
        else if (o.verbose)
            fprintf(stderr, "gradc: wrote %s and %s\n", cpath, hpath);
    } else if (o.main_glue) {
        w_main(m, plans, &eo, out->f);
        if (!commit_output(out, 0))
            status = 2;
    } else if (!build_executable(a, m, plans, &o, &eo, out) || !commit_output(out, 1)) {
        status = 2;
    } else if (o.verbose) {
        fprintf(stderr, "gradc: built %s\n", o.output ? o.output : "the executable");
    }
done:
    if (o.emit && status == 0) {
        if (out->f) {
            if (!commit_output(out, 0))
                status = 2;
        } else if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "gradc: error: cannot write to standard output\n");
            status = 2;
        }
    }
    if (out->f)
        grt_outfile_abort(out);
    if (hout->f)
        grt_outfile_abort(hout);
    params_file_free(&ep);
    diag_release(&d);
    free(src);
    arena_free(a);
    return status;
}
