/*
 * text_fake.c: an executable of a text model without the compiler, for
 * tests/e2e/text.sh and tests/mpi.sh: the hand-written bigram model of
 * tests/rt_fake_model.c (input int(V)[T], target class(V)[T]) handed to
 * grt_main. V and T are -DTEXT_V=... -DTEXT_T=...; the train block is adam(lr =
 * 0.1), batch 8, 100 steps, unless -DSCHED_COSINE asks for
 * cosine(warmup = 10, min_lr = 0.01).
 */
#include "rt_fake_model.c"

#ifndef TEXT_V
#define TEXT_V 256
#endif
#ifndef TEXT_T
#define TEXT_T 8
#endif

int main(int argc, char **argv)
{
    grt_model m = fake_bigram(8, TEXT_V, TEXT_T);
    m.name = "bigram";
    m.train.batch = 8;
    m.train.steps = 100;
#ifdef SCHED_COSINE
    m.train.sched = GRT_COSINE;
    m.train.sched_a = 10;
    m.train.sched_b = 0.01;
#endif
    return grt_main(argc, argv, &m);
}
