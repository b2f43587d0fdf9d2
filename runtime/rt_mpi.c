/*
 * rt_mpi.c: the ranks of a data-parallel run over MPI: the functions of the
 * communication interface (rt_internal.h, "rt_comm.c") that the base
 * modules call, implemented with MPI, for executables built with `gradc
 * --mpi`. libgradcrt_mpi.a carries this file instead of rt_comm.c (the
 * single process); nothing else of the runtime knows MPI. docs/mpi.md is
 * the user's side of it.
 *
 * `mpirun -np P ./model train DATA ...` runs the same command on P ranks.
 * What the base modules do with the interface, so that one global step
 * equals the single-process step for any P (rt_data.c, rt_train.c):
 *
 *   - Rows are numbered 0..N-1 in file order (blank lines and the header
 *     not counted). Rank r reads the rows i with i % P == r and parses
 *     nothing else: no rank holds the whole set, and a bad field is
 *     reported by the rank that owns its row, with the file's line number.
 *   - Every rank knows N (it counts every row it skips), so every rank draws
 *     the same shuffle of 0..N-1 from the same seed, exactly as the
 *     single-process run does, and cuts it into the same global batches.
 *   - A global batch is split by ownership: each rank sums the gradient and
 *     loss over the rows of the batch it holds (in chunks of the generated
 *     batch, in double), one sum over the ranks (MPI_Allreduce) adds the P
 *     sums, and every rank divides by the batch size and takes the same
 *     optimizer step. The optimizer state, the shuffle generator and early
 *     stopping are therefore identical on every rank and independent of P;
 *     only the order of the floating-point additions changes with P.
 *   - --validate F holds out the same rows as one process does; validation
 *     loss, accuracy and --standardize's statistics are sums over the ranks.
 *
 * Only rank 0 prints and writes files; it also reads --resume's file and
 * broadcasts its bytes, so checkpoints need not be on a shared file system
 * and a run resumes with any number of ranks.
 *
 * Errors: one every rank meets alike is printed once by rank 0; one of a
 * single rank is printed by it, "rank 1 of 4: data.csv:57:3: error: ...",
 * and ends the whole job with MPI_Abort (grt_comm_abort): no rank is left
 * waiting in a collective. A rank that dies is noticed by mpirun, which
 * ends the others.
 *
 * GRADC_MPI_TIMES=1 makes rank 0 print, at exit, the number of sums over
 * the ranks and the seconds spent in them (bench/mpi.sh reads it).
 */
#include "rt_internal.h"

#ifdef GRT_MPI

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* The process's MPI state: one per process, as MPI's own is. */
static struct {
    int init;           /* MPI_Init done */
    int rank, size;     /* in MPI_COMM_WORLD */
    int solo;           /* grt_comm_solo: this process works alone */
    long sums;          /* sums over the ranks */
    double t_sum;       /* seconds in them */
} G;

/* At most this many elements per MPI call: counts are ints. */
#define PIECE ((size_t)1 << 30)

static void finalize_at_exit(void)
{
    int done = 0;
    const char *t = getenv("GRADC_MPI_TIMES");
    if (t && *t && G.rank == 0 && !G.solo && G.sums > 0)
        fprintf(stderr, "mpi: %d ranks, %ld allreduces, %.6f s in them (rank 0)\n", G.size,
                G.sums, G.t_sum);
    if (G.init && (MPI_Finalized(&done), !done))
        MPI_Finalize();
}

int grt_comm_init(int *argc, char ***argv)
{
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        exit(GRT_EXIT_USAGE);
    }
    G.init = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &G.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &G.size);
    /* A failed MPI call ends the job, which is what we would do anyway. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    atexit(finalize_at_exit);
    return G.size;
}

void grt_comm_solo(void) { G.solo = 1; }
int grt_comm_rank(void) { return G.solo ? 0 : G.rank; }
int grt_comm_size(void) { return G.solo || G.size < 1 ? 1 : G.size; }

static void reduce(double *v, size_t n, MPI_Op op)
{
    double t0 = grt_now();
    size_t at;
    if (grt_comm_size() == 1)
        return;
    for (at = 0; at < n; at += PIECE) {
        size_t k = n - at < PIECE ? n - at : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, v + at, (int)k, MPI_DOUBLE, op, MPI_COMM_WORLD);
    }
    G.sums++;
    G.t_sum += grt_now() - t0;
}

void grt_comm_sum(double *v, size_t n) { reduce(v, n, MPI_SUM); }
void grt_comm_min(double *v, size_t n) { reduce(v, n, MPI_MIN); }

void grt_comm_bcast(void *p, size_t n)
{
    size_t at;
    if (grt_comm_size() == 1)
        return;
    for (at = 0; at < n; at += PIECE) {
        size_t k = n - at < PIECE ? n - at : PIECE;
        MPI_Bcast((char *)p + at, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

void grt_comm_abort(int status)
{
    if (grt_comm_size() > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

#else

/* Built without MPI this file is empty (an empty translation unit is not ISO C). */
typedef int grt_comm_not_built;

#endif
