/*
 * main.c: the gradc command line, and the pipeline stated once, in order:
 *
 *   read -> parse (grammar/) -> check and build the forward graph (sema.c)
 *   -> simplify the forward graph (stable forms before differentiation)
 *   -> reverse mode (grad.c) -> simplify both -> plan each function (plan.c)
 *   -> emit (emit_c.c), and for an executable, compile with the runtime.
 *
 * --emit=KIND stops after the stage it names and prints it. Every output
 * file is written to a temporary file beside it and renamed into place, so
 * a failure leaves no half-written output.
 */
#include "gradc.h"

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
    const char *input;      /* the model file */
    const char *output;     /* -o */
    const char *emit;       /* --emit=KIND */
    int c_only;             /* -c */
    int check;              /* --check */
    int opt;                /* -O level */
    int batch;              /* --batch N, 0: from the model */
    int debug;              /* -g */
    const char *cc;         /* --cc */
    const char *cflags;     /* --cflags */
    int quiet, verbose;     /* -q, -v */
    int explain;            /* --explain */
    int scalar;             /* --scalar */
    int predict_only;       /* --predict-only */
    int mpi;                /* --mpi: mpicc and the MPI runtime (docs/mpi.md) */
    int threads;            /* --threads N: OpenMP, N threads by default */
    const char *embed;      /* --embed-params PARAMS */
    char cmdline[1024];     /* as given, for generated headers */
} Options;

static void usage(FILE *f)
{
    fputs("usage: gradc [options] FILE.nn\n"
          "\n"
          "  gradc FILE.nn               build the training executable ./FILE\n"
          "  gradc FILE.nn -o PATH       ... at PATH\n"
          "  gradc -c FILE.nn [-o DIR]   write FILE.c and FILE.h only (for other builds)\n"
          "  gradc --emit=KIND FILE.nn   print one stage and stop: tokens, ast, graph,\n"
          "                              grad, c, h, dot, stats\n"
          "  gradc --check FILE.nn       parse and check only\n"
          "\n"
          "options:\n"
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
          "  --threads N         build the executable with OpenMP: matrix products\n"
          "                      on N threads (OMP_NUM_THREADS overrides)\n"
          "  --explain           print every rewrite the simplifier applies\n"
          "  -q, -v              quiet, verbose\n"
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (bad_usage("option '%s' needs an argument", a), ""))
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("gradc %s (revision %s)\n", GRADC_VERSION, GRADC_REVISION);
            exit(0);
        } else if (!strcmp(a, "-c")) {
            o->c_only = 1;
        } else if (!strcmp(a, "-o")) {
            o->output = NEXT();
        } else if (!strncmp(a, "--emit=", 7)) {
            o->emit = a + 7;
        } else if (!strcmp(a, "--emit")) {
            o->emit = NEXT();
        } else if (!strcmp(a, "--check")) {
            o->check = 1;
        } else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
            o->opt = a[2] - '0';
        } else if (!strcmp(a, "--batch") || !strncmp(a, "--batch=", 8)) {
            o->batch = whole_number("--batch", a[7] == '=' ? a + 8 : NEXT(), 1 << 20);
        } else if (!strcmp(a, "-g")) {
            o->debug = 1;
        } else if (!strcmp(a, "--cc")) {
            o->cc = NEXT();
        } else if (!strcmp(a, "--cflags")) {
            o->cflags = NEXT();
        } else if (!strcmp(a, "--explain")) {
            o->explain = 1;
        } else if (!strcmp(a, "-q")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-v")) {
            o->verbose = 1;
        } else if (!strcmp(a, "--scalar")) {
            o->scalar = 1;
        } else if (!strcmp(a, "--predict-only")) {
            o->predict_only = 1;
        } else if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            o->threads = whole_number("--threads", a[9] == '=' ? a + 10 : NEXT(), 1024);
        } else if (!strcmp(a, "--mpi")) {
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
    }
    if (!o->input)
        bad_usage("%s", "no model file given");
    int to_c = o->c_only || (o->emit && (!strcmp(o->emit, "c") || !strcmp(o->emit, "h")));
    if (o->predict_only && !to_c)
        bad_usage("%s goes with -c (or --emit=c, --emit=h): an executable needs the gradient", "--predict-only");
    if (o->embed && !to_c)
        bad_usage("%s goes with -c (or --emit=c, --emit=h)", "--embed-params");
    if (o->mpi && (o->c_only || o->emit || o->check))
        bad_usage("%s builds an executable: it does not go with -c, --emit or --check", "--mpi");
    if (o->scalar && o->predict_only)
        bad_usage("%s does not go with --scalar", "--predict-only");
    if (o->emit) {
        static const char *const kinds[] = {"tokens", "ast", "graph", "grad", "c", "h", "dot", "stats", NULL};
        int ok = 0;
        for (int i = 0; kinds[i]; i++)
            ok |= !strcmp(kinds[i], o->emit);
        if (!ok)
            bad_usage("unknown --emit kind '%s'; expected tokens, ast, graph, grad, c, h, dot or stats", o->emit);
    }
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

/* ------------------------------------------------------------ output */

typedef void (*Writer)(Model *m, Plan *plans, const Options *o, FILE *f);

/* Writes path through a temporary file in the same directory. */
static int write_atomic(const char *path, Model *m, Plan *plans, const Options *o, Writer w)
{
    size_t n = strlen(path);
    char *tmp = xmalloc(n + 16);
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "gradc: error: cannot write '%s': %s\n", path, strerror(errno));
        free(tmp);
        return 0;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return 0;
    }
    w(m, plans, o, f);
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0 && errno != EINVAL;
    bad |= fclose(f) != 0;
    if (!bad) {
        fchmod(fd, 0644);
        chmod(tmp, 0644);
    }
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "gradc: error: cannot write '%s': %s\n", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        free(tmp);
        return 0;
    }
    free(tmp);
    return 1;
}

static EmitOptions emit_opts(const Options *o)
{
    EmitOptions e = {o->debug, o->input, o->cmdline, o->scalar, o->predict_only, NULL};
    return e;
}

static const EmbeddedParams *g_embed; /* --embed-params, for the writers */

static void w_c(Model *m, Plan *plans, const Options *o, FILE *f)
{
    EmitOptions e = emit_opts(o);
    e.embed = g_embed;
    emit_c(m, plans, &e, f);
}

static void w_h(Model *m, Plan *plans, const Options *o, FILE *f)
{
    EmitOptions e = emit_opts(o);
    e.embed = g_embed;
    emit_h(m, plans, &e, f);
}

static void w_main(Model *m, Plan *plans, const Options *o, FILE *f)
{
    (void)o;
    emit_main(m, plans, f);
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

static void rm_tree(const char *dir, const char *const *files)
{
    char path[PATH_MAX];
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int build_executable(Arena *a, Model *m, Plan *plans, const Options *o, const char *out)
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
    const char *cfile = arena_printf(a, "%s.c", m->cname);
    const char *hfile = arena_printf(a, "%s.h", m->cname);
    const char *mfile = arena_printf(a, "%s_main.c", m->cname);
    const char *files[] = {cfile, hfile, mfile, NULL};
    int ok = write_atomic(arena_printf(a, "%s/%s", dir, cfile), m, plans, o, w_c) &&
             write_atomic(arena_printf(a, "%s/%s", dir, hfile), m, plans, o, w_h) &&
             write_atomic(arena_printf(a, "%s/%s", dir, mfile), m, plans, o, w_main);
    if (!ok) {
        rm_tree(dir, files);
        return 0;
    }
    /* the executable itself, through a temporary name beside it */
    char *tmpout = arena_printf(a, "%s.tmpXXXXXX", out);
    int fd = mkstemp(tmpout);
    if (fd < 0) {
        fprintf(stderr, "gradc: error: cannot write '%s': %s\n", out, strerror(errno));
        rm_tree(dir, files);
        return 0;
    }
    close(fd);
    char *argv[128];
    int n = 0;
    const char *cc = o->cc ? o->cc : getenv(o->mpi ? "MPICC" : "CC");
    n += split_words(a, cc && *cc ? cc : o->mpi ? "mpicc" : "cc", argv + n, 8);
    n += split_words(a, o->cflags ? o->cflags : "-O2 -march=native", argv + n, 64);
    argv[n++] = "-std=c99";
    if (o->threads) {
        argv[n++] = "-fopenmp";
        argv[n++] = arena_printf(a, "-DGRADC_THREADS=%d", o->threads);
    }
    if (m->is_double)
        argv[n++] = "-DGRT_DOUBLE";
    argv[n++] = arena_printf(a, "-I%s", dir);
    argv[n++] = arena_printf(a, "-I%s", incdir);
    argv[n++] = arena_printf(a, "%s/%s", dir, cfile);
    argv[n++] = arena_printf(a, "%s/%s", dir, mfile);
    argv[n++] = arena_printf(a, "%s/libgradcrt%s%s.a", libdir, o->mpi ? "_mpi" : "",
                             m->is_double ? "_d" : "");
    argv[n++] = "-lz";
    argv[n++] = "-lm";
    argv[n++] = "-o";
    argv[n++] = tmpout;
    argv[n] = NULL;
    int rc = run(argv, o->verbose);
    if (rc != 0) {
        fprintf(stderr, "gradc: error: the C compiler failed (exit %d) on the code generated from '%s'\n",
                rc, o->input);
        unlink(tmpout);
        rm_tree(dir, files);
        return 0;
    }
    chmod(tmpout, 0755);
    if (rename(tmpout, out) != 0) {
        fprintf(stderr, "gradc: error: cannot write '%s': %s\n", out, strerror(errno));
        unlink(tmpout);
        rm_tree(dir, files);
        return 0;
    }
    rm_tree(dir, files);
    return 1;
}

/* ------------------------------------------------------- the pipeline */

int main(int argc, char **argv)
{
    Options o;
    parse_args(argc, argv, &o);
    Arena *a = arena_new();
    size_t len;
    char *src = read_file(o.input, &len);
    if (!src) {
        fprintf(stderr, "gradc: error: cannot read '%s': %s\n", o.input, strerror(errno));
        return 2;
    }
    Diag d;
    diag_init(&d, o.input, src, len);
    d.color = 0;
    int status = 0;
    EmbeddedParams ep = {0};

    if (o.emit && !strcmp(o.emit, "tokens")) {
        dump_tokens(a, &d, stdout);
        status = d.errors ? 1 : 0;
        goto done;
    }
    Ast *ast = parse_source(a, &d);
    if (o.emit && !strcmp(o.emit, "ast")) {
        ast_dump(ast, stdout);
        status = d.errors ? 1 : 0;
        goto done;
    }
    Model *m = sema_check(a, &d, ast, base_name(a, o.input));
    if (!m || d.errors) {
        status = 1;
        goto done;
    }
    if (o.check)
        goto done;
    if (o.batch)
        m->batch = o.batch;
    FILE *explain = o.explain ? stderr : NULL;
    simplify(m, o.opt, explain); /* stable forms before differentiation */
    if (o.emit && !strcmp(o.emit, "graph") && o.opt == 0) {
        emit_graph(m, stdout, 0);
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
        emit_graph(m, stdout, 1);
        goto done;
    }
    if (o.emit && !strcmp(o.emit, "grad")) {
        emit_grad(m, stdout);
        goto done;
    }
    if (o.scalar) {
        char why[160];
        if (!scalar_check(m, why, sizeof why)) {
            fprintf(stderr, "gradc: error: %s: %s\n", o.input, why);
            status = 2;
            goto done;
        }
    }
    Plan plans[FN_COUNT];
    for (int i = 0; i < FN_COUNT; i++)
        plan_build(m, (FnKind)i, &plans[i]);
    EmitOptions eo = emit_opts(&o);
    if (o.embed) {
        char err[512];
        if (!params_file_read(m, o.embed, &ep, err, sizeof err)) {
            fprintf(stderr, "gradc: error: %s\n", err);
            status = 2;
            goto done;
        }
        eo.embed = &ep;
        g_embed = &ep;
    }
    if (o.emit) {
        if (!strcmp(o.emit, "c"))
            emit_c(m, plans, &eo, stdout);
        else if (!strcmp(o.emit, "h"))
            emit_h(m, plans, &eo, stdout);
        else if (!strcmp(o.emit, "dot"))
            emit_dot(m, stdout);
        else
            emit_stats(m, plans, stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "gradc: error: cannot write to standard output\n");
            status = 2;
        }
        goto done;
    }
    if (o.c_only) {
        const char *dir = o.output ? o.output : ".";
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "gradc: error: '%s' is not a directory (with -c, -o names the directory)\n", dir);
            status = 2;
            goto done;
        }
        char *cpath = arena_printf(a, "%s/%s.c", dir, m->cname);
        char *hpath = arena_printf(a, "%s/%s.h", dir, m->cname);
        if (!write_atomic(hpath, m, plans, &o, w_h) || !write_atomic(cpath, m, plans, &o, w_c))
            status = 2;
        else if (!o.quiet && o.verbose)
            fprintf(stderr, "gradc: wrote %s and %s\n", cpath, hpath);
        goto done;
    }
    const char *out = o.output ? o.output : arena_printf(a, "./%s", base_name(a, o.input));
    if (!build_executable(a, m, plans, &o, out))
        status = 2;
    else if (o.verbose)
        fprintf(stderr, "gradc: built %s\n", out);
done:
    params_file_free(&ep);
    diag_release(&d);
    free(src);
    arena_free(a);
    return status;
}
