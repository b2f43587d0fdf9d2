/*
 * rt_comm.c: the ranks of a run, for a single process: rank 0 of 1, and
 * every collective of the interface (rt_internal.h, "rt_comm.c") a no-op.
 *
 * The base modules (data, params, train, main) are written for P ranks that
 * each hold a part of the data and agree through these few calls; with one
 * rank the same code is the ordinary single-process runtime. libgradcrt.a
 * links this file; the data-parallel library links another implementation
 * of the same functions instead, chosen at link time. Nothing here calls up
 * into the modules that use it.
 */
#include "rt_internal.h"

#include <stdlib.h>

int grt_comm_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 1;
}

void grt_comm_solo(void) {}
int grt_comm_rank(void) { return 0; }
int grt_comm_size(void) { return 1; }

void grt_comm_sum(double *v, size_t n)
{
    (void)v;
    (void)n;
}

void grt_comm_min(double *v, size_t n)
{
    (void)v;
    (void)n;
}

void grt_comm_bcast(void *p, size_t n)
{
    (void)p;
    (void)n;
}

void grt_comm_abort(int status) { exit(status); }
