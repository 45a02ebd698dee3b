# mspace — build, test and benchmark. `make help` lists the targets.
# Local overrides (CC, extra flags) go in config.mak, which is not tracked.
-include config.mak

CC      ?= cc
OPT     ?= -O2
CFLAGS  += $(OPT) -g -std=gnu11 -fPIC -Wall -Wextra -Wno-unused-parameter \
           -fvisibility=hidden -ftls-model=initial-exec -fno-builtin-malloc \
           -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
           -fno-stack-protector -fno-semantic-interposition -pthread -MMD -MP
LDFLAGS += -shared -pthread -Wl,-z,now -Wl,--no-undefined

B        = build
CORE_SRC = $(wildcard core/*.c)
INTERPOSE_SRC = $(wildcard interpose/*.c)
CORE_OBJ = $(CORE_SRC:%.c=$(B)/%.o)
LIB_OBJ  = $(CORE_OBJ) $(INTERPOSE_SRC:%.c=$(B)/%.o)
# The hardened build (core/secure.h): the same sources with MS_SECURE=1.
SECURE_OBJ = $(LIB_OBJ:$(B)/%=$(B)/secure/%)

PREFIX  ?= /usr/local
VERSION ?= 0.1

.PHONY: all test fuzz soak bench bench-instr deps clean help install
all: libmspace.so libmspace-secure.so

libmspace.so: $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^

libmspace-secure.so: $(SECURE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/secure/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMS_SECURE=1 -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# Core unit tests link the core objects directly (no interposition), so the
# test binary itself still runs on glibc's malloc.
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/unit/%)
$(B)/tests/unit/%: tests/unit/%.c $(CORE_OBJ) tests/harness.h
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 -Wall -Wextra -pthread -Icore -o $@ $< $(CORE_OBJ)

# The same unit tests with the core recompiled under ASan and UBSan
# (mspace maps its own memory, so ASan checks the tests' and core's other
# accesses, not the blocks).
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CORE_OBJ = $(CORE_SRC:%.c=$(B)/san/%.o)
SAN_UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/san/tests/unit/%)
.SECONDARY: $(SAN_CORE_OBJ)
$(B)/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -c -o $@ $<
$(B)/san/tests/unit/%: tests/unit/%.c $(SAN_CORE_OBJ) tests/harness.h
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 -Wall -Wextra -pthread $(SAN) -Icore -o $@ $< $(SAN_CORE_OBJ)

# The whole library with UBSan, preloaded under the model's random run.
UBSAN_LIB = $(B)/ubsan/libmspace.so
$(B)/ubsan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=undefined -fno-sanitize-recover=undefined -c -o $@ $<
$(UBSAN_LIB): $(LIB_OBJ:$(B)/%=$(B)/ubsan/%)
	$(CC) $(LDFLAGS) -fsanitize=undefined -o $@ $^

# The fuzzer (tests/fuzz/) preloads a clang build of the library with
# coverage instrumentation, so libFuzzer steers by the allocator's branches
# as well as the model's.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_COV = -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp
FUZZ_BIN = $(B)/fuzz/fuzz_malloc $(B)/fuzz/libmspace.so
$(B)/fuzz/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_COV) -c -o $@ $<
$(B)/fuzz/tests/fuzz/sancov_stubs.o: tests/fuzz/sancov_stubs.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS) -c -o $@ $<
$(B)/fuzz/libmspace.so: $(LIB_OBJ:$(B)/%=$(B)/fuzz/%) $(B)/fuzz/tests/fuzz/sancov_stubs.o
	$(FUZZ_CC) $(LDFLAGS) -o $@ $^
$(B)/fuzz/fuzz_malloc: tests/fuzz/fuzz_malloc.c tests/fuzz/model.h tests/pattern.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -O1 -g -std=gnu11 -Wall -Wextra -fno-builtin -pthread -fsanitize=fuzzer -o $@ $<

# Everything else in tests/ is a plain malloc/free program run under LD_PRELOAD.
PROG_SRC = $(wildcard tests/api/*.c tests/misuse/*.c tests/stress/*.c tests/faults/*.c)
PROG_BIN = $(PROG_SRC:tests/%.c=$(B)/tests/%)
# Frame pointers and exported symbols, so stacks in heap profiles and leak
# reports resolve to the test's function names.
$(B)/tests/%: tests/%.c $(wildcard tests/*.h tests/*/*.h) interpose/mspace.h
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-result -fno-builtin -fno-omit-frame-pointer \
	      -rdynamic -pthread -o $@ $<
$(B)/tests/stress/model_random: tests/fuzz/model.h
CXX_SRC = $(wildcard tests/api/*.cc tests/faults/*.cc)
CXX_BIN = $(CXX_SRC:tests/%.cc=$(B)/tests/%)
$(B)/tests/%: tests/%.cc $(wildcard tests/*.h tests/*/*.h) interpose/mspace.h
	@mkdir -p $(@D)
	$(CXX) -O1 -g -std=c++17 -Wall -Wextra -fno-builtin -pthread -o $@ $<

# The soak runs minutes on its own; make test runs it for 5 s as a smoke test.
SOAK_BIN = $(B)/tests/soak/soak
SOAK_SECONDS ?= 180

test: libmspace.so libmspace-secure.so $(UNIT_BIN) $(SAN_UNIT_BIN) $(PROG_BIN) $(CXX_BIN) $(UBSAN_LIB) $(FUZZ_BIN) $(SOAK_BIN)
	@scripts/deps.sh --check-test
	@tests/run.sh

fuzz: $(FUZZ_BIN)
	@scripts/deps.sh --check-test
	@tests/fuzz/fuzz.sh $(FUZZ_SECONDS) $(B)/fuzz/corpus

soak: libmspace.so $(SOAK_BIN)
	LD_PRELOAD=$(CURDIR)/libmspace.so $(SOAK_BIN) $(SOAK_SECONDS)

bench: libmspace.so libmspace-secure.so
	@scripts/deps.sh --check-bench
	@scripts/bench.sh $(if $(QUICK),--quick)

bench-instr: libmspace.so libmspace-secure.so
	@scripts/deps.sh --check-bench
	@scripts/bench.sh --instr

# DESTDIR stages the files for a package; the .pc file names PREFIX only.
install: libmspace.so libmspace-secure.so
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 libmspace.so libmspace-secure.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 interpose/mspace.h $(DESTDIR)$(PREFIX)/include/mspace.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' mspace.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mspace.pc

deps:
	@scripts/deps.sh --install

clean:
	rm -rf $(B) libmspace.so libmspace-secure.so

help:
	@echo "make          build libmspace.so and the hardened libmspace-secure.so"
	@echo "make test     build and run every test (ends with 'N passed, N failed')"
	@echo "make fuzz     run libFuzzer on the allocator for FUZZ_SECONDS (600); corpus in build/fuzz/corpus"
	@echo "make soak     threads, forks and cross-thread frees for SOAK_SECONDS (180) s"
	@echo "make bench    compare mspace with glibc, jemalloc, tcmalloc, mimalloc (QUICK=1 for a short run)"
	@echo "make bench-instr  instructions per malloc and per free under callgrind"
	@echo "make install PREFIX=/usr/local  lib/libmspace.so (and -secure), include/mspace.h, lib/pkgconfig/mspace.pc"
	@echo "make deps     install the Debian packages the tests and benchmarks use"

-include $(shell find $(B) -name '*.d' 2>/dev/null)
