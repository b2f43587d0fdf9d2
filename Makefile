# gradc: a compiler from a small model language to specialized C.
#
#   make            build build/gradc and the runtime libraries
#   make demo       compile examples/seed.nn, train it, show its test accuracy
#   make test       unit tests, end-to-end tests, gradient checks
#   make install    gradc, its runtime, man page, pkg-config and CMake files
#                   (PREFIX=/usr/local DESTDIR=)
#   make clean
#
# Missing build and test tools (BUILD_NEEDS, TEST_NEEDS below) are installed with
# apt-get when make runs as root; otherwise the command to run is printed.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Wpedantic
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -Icompiler -Ibuild -Iruntime
PREFIX  ?= /usr/local
DESTDIR ?=
FLEX    ?= flex
BISON   ?= bison
B        = build

COMPILER = arena diag ast sema ir grad simplify plan fuse conv norm printer emit_c emit_loops emit_matmul emit_iface emit_scalar deploy emit_text emit_dot emit_main
COMPILER_OBJS = $(patsubst %,$(B)/%.o,$(COMPILER)) $(B)/lexer.o $(B)/parser.o
# the runtime: the base modules over the communication interface, whose
# single-process implementation (rt_comm.c) libgradcrt.a carries and whose
# MPI implementation (rt_mpi.c) libgradcrt_mpi.a carries instead
RUNTIME = $(filter-out rt_mpi,$(patsubst runtime/%.c,%,$(wildcard runtime/*.c)))
RT_BASE = $(filter-out rt_comm,$(RUNTIME))
RT_OBJS = $(patsubst %,$(B)/rt/%.o,$(RUNTIME))
RT_D_OBJS = $(patsubst %,$(B)/rt_d/%.o,$(RUNTIME))
HEADERS = compiler/gradc.h compiler/ops.def
RT_HEADERS = $(wildcard runtime/*.h)

UNIT_TESTS = $(patsubst tests/%.c,$(B)/%,$(wildcard tests/test_*.c)) $(B)/test_gemm_avx2 $(B)/test_gemm_native $(B)/test_gemm_omp

all: $(B)/gradc $(B)/libgradcrt.a $(B)/libgradcrt_d.a

# The MPI runtime (gradc --mpi, docs/mpi.md), only where mpicc exists
# (apt-get install libopenmpi-dev openmpi-bin).
MPICC ?= mpicc
HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1)
RT_MPI_OBJS = $(patsubst %,$(B)/rt/%.o,$(RT_BASE)) $(B)/rt_mpi/rt_mpi.o
RT_MPI_D_OBJS = $(patsubst %,$(B)/rt_d/%.o,$(RT_BASE)) $(B)/rt_mpi/rt_mpi.o
ifeq ($(HAVE_MPI),1)
all: $(B)/libgradcrt_mpi.a $(B)/libgradcrt_mpi_d.a
endif

# ------------------------------------------------------------ build tools
# What the build and the tests need, each as CHECK=PACKAGE: a command on PATH,
# a file (a path), or py:MODULE (a Python module of Debian's /usr/bin/python3).
# Missing ones are installed with apt-get when make runs as root; otherwise
# make stops and prints the apt-get command. Tests of optional features
# (tests/mpi.sh, examples/fmnist.sh) install or name their own.
BUILD_NEEDS = flex=flex bison=bison /usr/include/zlib.h=zlib1g-dev
TEST_NEEDS = /usr/include/cmocka.h=libcmocka-dev py:numpy=python3-numpy clang=clang \
  /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a=libclang-rt-14-dev \
  cmake=cmake pkg-config=pkg-config valgrind=valgrind man=man-db script=bsdutils size=binutils
need = missing=""; for n in $(1); do c=$${n%=*}; \
	  case $$c in /*) ls $$c >/dev/null 2>&1 ;; py:*) /usr/bin/python3 -c "import $${c\#py:}" 2>/dev/null ;; \
	    *) command -v $$c >/dev/null 2>&1 ;; esac || missing="$$missing $${n\#*=}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } >/dev/null || exit 1; \
	  else echo "missing:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	fi

$(B)/.tools: | $(B)
	@$(call need,$(BUILD_NEEDS)); touch $@

$(B)/.testtools: | $(B)
	@$(call need,$(TEST_NEEDS)); touch $@

$(B) $(B)/rt $(B)/rt_d $(B)/rt_mpi:
	@mkdir -p $@

# ---------------------------------------------------------------- compiler
# one run makes both files (&:): with two targets on a plain rule, make -j
# could run flex twice at once and compile a half-written lexer.c
$(B)/lexer.c $(B)/lexer.h &: grammar/lexer.l $(B)/.tools | $(B)
	$(FLEX) --header-file=$(B)/lexer.h -o $(B)/lexer.c grammar/lexer.l

$(B)/parser.c $(B)/parser.h &: grammar/parser.y $(B)/.tools | $(B)
	$(BISON) -Wall -d -o $(B)/parser.c grammar/parser.y

$(B)/lexer.o: $(B)/lexer.c $(B)/parser.h $(HEADERS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -std=c99 -Wall -Wno-unused-function -Wno-sign-compare -c -o $@ $<

$(B)/parser.o: $(B)/parser.c $(B)/lexer.h $(HEADERS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -std=c99 -Wall -Wno-unused-function -c -o $@ $<

# the templates generated files carry (the matrix product; e^x and log(1 + u)
# for float sigmoid/softplus/bce), each as a C string without its own header comment
$(B)/%.inc: compiler/%.c | $(B)
	awk 'skip && /^ \*\//{skip=0; next} NR==1 && /^\/\*/{skip=1} !skip' $< | \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n",/' > $@

$(B)/emit_c.o: $(B)/gemm_kernel.inc $(B)/vmath.inc

$(B)/%.o: compiler/%.c $(HEADERS) | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

# main.o records the source revision (gradc --version): rebuilt when a commit moves HEAD
# (HEAD and the current branch's ref only: other branches' commits change nothing here)
GIT_STATE := $(wildcard $(shell git rev-parse --git-path HEAD 2>/dev/null) \
  $(addprefix $(shell git rev-parse --git-common-dir 2>/dev/null)/,$(shell git rev-parse --symbolic-full-name HEAD 2>/dev/null) packed-refs))
$(B)/main.o: compiler/main.c $(HEADERS) $(GIT_STATE) | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DGRADC_REVISION=\"$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\" -c -o $@ $<

# every compiler object waits for the generated headers
$(patsubst %,$(B)/%.o,$(COMPILER)) $(B)/main.o: | $(B)/parser.h $(B)/lexer.h

# runtime objects gradc links too: the output policy (runtime/grt_output.h)
# and the reader of parameter files (rt_pfile.c, for --embed-params), with
# what they use
GRADC_RT = $(B)/rt/rt_output.o $(B)/rt/rt_pfile.o $(B)/rt/rt_util.o

$(B)/gradc: $(COMPILER_OBJS) $(B)/main.o $(GRADC_RT)
	$(CC) $(CFLAGS) -o $@ $^ -lm

# ----------------------------------------------------------------- runtime
$(B)/rt/%.o: runtime/%.c $(RT_HEADERS) | $(B)/rt
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

$(B)/rt_d/%.o: runtime/%.c $(RT_HEADERS) | $(B)/rt_d
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DGRT_DOUBLE -c -o $@ $<

$(B)/libgradcrt.a: $(RT_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libgradcrt_d.a: $(RT_D_OBJS)
	rm -f $@ && ar rcs $@ $^

# the transport uses no grt_real: one object serves both precisions
$(B)/rt_mpi/rt_mpi.o: runtime/rt_mpi.c $(RT_HEADERS) | $(B)/rt_mpi
	$(MPICC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DGRT_MPI -c -o $@ $<

$(B)/libgradcrt_mpi.a: $(RT_MPI_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libgradcrt_mpi_d.a: $(RT_MPI_D_OBJS)
	rm -f $@ && ar rcs $@ $^

# ------------------------------------------------------------------- tests
$(B)/test_%: tests/test_%.c $(COMPILER_OBJS) $(RT_OBJS) $(B)/.testtools
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(COMPILER_OBJS) $(RT_OBJS) -lcmocka -lz -lm

# the matrix product's three kernels (portable, AVX2, what -march=native picks), and the last on threads
$(B)/test_gemm: tests/test_gemm.c compiler/gemm_kernel.c $(B)/.testtools
	$(CC) $(CFLAGS) $(WARN) -o $@ $< -lcmocka -lm
$(B)/test_gemm_avx2: tests/test_gemm.c compiler/gemm_kernel.c $(B)/.testtools
	$(CC) $(CFLAGS) $(WARN) -mavx2 -mfma -o $@ $< -lcmocka -lm
$(B)/test_gemm_native: tests/test_gemm.c compiler/gemm_kernel.c $(B)/.testtools
	$(CC) $(CFLAGS) $(WARN) -march=native -o $@ $< -lcmocka -lm
$(B)/test_vmath: compiler/vmath.c
$(B)/test_gemm_omp: tests/test_gemm.c compiler/gemm_kernel.c $(B)/.testtools
	$(CC) $(CFLAGS) $(WARN) -march=native -fopenmp -o $@ $< -lcmocka -lm

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t || fail=1; done; exit $$fail

test: all $(B)/.testtools unit
	+@bash tests/run_e2e.sh

# long runs, outside `make test`
check-long: all
	@bash tests/check_long.sh

fmnist: all
	@bash examples/fmnist.sh

# the GPT of examples/gpt.nn trained on tiny shakespeare (a few minutes)
gpt: all
	@bash examples/gpt.sh

bench: all
	@bash bench/run.sh
	@BENCH_BASE=$${BENCH_BASE-5abc745} bash bench/flags.sh
	-@bash bench/m6.sh

examples-dot: all
	@command -v dot >/dev/null || { echo "graphviz is missing: apt-get install graphviz" >&2; exit 1; }
	@mkdir -p $(B)/dot
	@for f in examples/*.nn; do n=$$(basename $$f .nn); \
	  $(B)/gradc --emit=dot $$f > $(B)/dot/$$n.dot && dot -Tsvg $(B)/dot/$$n.dot -o $(B)/dot/$$n.svg && echo "$(B)/dot/$$n.svg"; done

fuzz:
	@bash tests/fuzz/run.sh

test-sanitize:
	@bash tests/sanitize.sh

test-mpi: all
	@bash tests/mpi.sh

demo: all
	@bash examples/demo.sh

# ----------------------------------------------------------------- install
VERSION = $(shell sed -n 's/^\#define GRADC_VERSION "\(.*\)"/\1/p' compiler/gradc.h)

PC = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' docs/gradc.pc.in
CMAKEDIR = $(DESTDIR)$(PREFIX)/lib/cmake/gradc

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/gradc $(DESTDIR)$(PREFIX)/include/gradc \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/lib/pkgconfig $(CMAKEDIR)
	install -m 755 $(B)/gradc $(DESTDIR)$(PREFIX)/bin/gradc
	install -m 644 $(B)/libgradcrt.a $(B)/libgradcrt_d.a $(DESTDIR)$(PREFIX)/lib/gradc/
	for l in $(B)/libgradcrt_mpi.a $(B)/libgradcrt_mpi_d.a; do [ ! -f $$l ] || install -m 644 $$l $(DESTDIR)$(PREFIX)/lib/gradc/; done
	install -m 644 runtime/gradc_rt.h runtime/grt_train.def $(DESTDIR)$(PREFIX)/include/gradc/
	install -m 644 docs/gradc.1 $(DESTDIR)$(PREFIX)/share/man/man1/gradc.1
	$(PC) -e 's|@NAME@|gradc|' -e 's|@PRECISION@|float|' -e 's|@SUFFIX@||' -e 's|@DEFS@||' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradc.pc
	$(PC) -e 's|@NAME@|gradc-double|' -e 's|@PRECISION@|double|' -e 's|@SUFFIX@|_d|' -e 's|@DEFS@| -DGRT_DOUBLE|' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradc-double.pc
	install -m 644 cmake/gradcConfig.cmake $(CMAKEDIR)/
	sed 's|@VERSION@|$(VERSION)|' cmake/gradcConfigVersion.cmake.in > $(CMAKEDIR)/gradcConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/gradc $(DESTDIR)$(PREFIX)/lib/gradc/libgradcrt.a \
	  $(DESTDIR)$(PREFIX)/lib/gradc/libgradcrt_d.a $(DESTDIR)$(PREFIX)/include/gradc/gradc_rt.h $(DESTDIR)$(PREFIX)/include/gradc/grt_train.def \
	  $(DESTDIR)$(PREFIX)/lib/gradc/libgradcrt_mpi.a $(DESTDIR)$(PREFIX)/lib/gradc/libgradcrt_mpi_d.a \
	  $(DESTDIR)$(PREFIX)/share/man/man1/gradc.1 $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradc.pc \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradc-double.pc \
	  $(CMAKEDIR)/gradcConfig.cmake $(CMAKEDIR)/gradcConfigVersion.cmake
	-rmdir $(DESTDIR)$(PREFIX)/lib/gradc $(DESTDIR)$(PREFIX)/include/gradc $(CMAKEDIR) 2>/dev/null

clean:
	rm -rf $(B) examples/*.params

.PHONY: all unit test demo clean examples-dot install uninstall check-long fmnist gpt bench fuzz test-sanitize test-mpi
.DELETE_ON_ERROR:
