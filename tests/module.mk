# tests: unit tests (cmocka), fuzz target replay, integration scripts.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(filter-out tests/unit/test_virtq,$(UNIT_SRCS:.c=))
TEST_HELPER_OBJS := tests/unit/model.o
FUZZ_TARGETS := open vhdx import virtq
TEST_BINS += $(UNIT_BINS) $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%_replay)

$(UNIT_BINS): %: %.o $(TEST_HELPER_OBJS) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(LIBVHD_A) $(CMOCKA_LIBS) $(LIBVHD_LIBS)

tests/unit/%.o: CPPFLAGS += -Ilibvhd $(CMOCKA_CFLAGS)

# The fuzz target: replayed over its corpus by make check; built with
# libFuzzer by `make fuzz` after ./configure --enable-fuzz.
tests/fuzz/%.o: CPPFLAGS += -Ilibvhd
tests/fuzz/fuzz_%_replay: tests/fuzz/fuzz_%.o tests/fuzz/replay_main.o $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBVHD_LIBS)

fuzz: $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIBVHD_SRCS)
	@test -n "$(FUZZ_CC)" || { echo "run ./configure --enable-fuzz first"; exit 1; }
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CPPFLAGS) -Ilibvhd -o $@ $^ $(LIBVHD_LIBS)

CLEAN += $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)

# Small C helpers used by integration scripts (e.g. to craft bad images).
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:.c=)
TEST_BINS += $(HELPER_BINS)
tests/helpers/%.o: CPPFLAGS += -Ilibvhd
$(HELPER_BINS): %: %.o $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBVHD_A) $(LIBVHD_LIBS)

# The test guest for hvcore and its host helper.
include tests/guests/module.mk
# hvcore's virtqueue parser: the fuzz target and the unit test link the
# hvcore files that have no KVM dependency ($(HVCORE_PURE_OBJS)).
tests/fuzz/fuzz_virtq.o tests/unit/test_virtq.o: CPPFLAGS += -Ihvcore
tests/fuzz/fuzz_virtq_replay: tests/fuzz/fuzz_virtq.o tests/fuzz/replay_main.o $(HVCORE_PURE_OBJS) $(PT_A) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBVHD_LIBS)
tests/fuzz/fuzz_virtq: tests/fuzz/fuzz_virtq.c $(HVCORE_PURE_OBJS:.o=.c) $(PT_SRCS) $(LIBVHD_SRCS)
	@test -n "$(FUZZ_CC)" || { echo "run ./configure --enable-fuzz first"; exit 1; }
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CPPFLAGS) -Ilibvhd -Ihvcore -o $@ $^ $(LIBVHD_LIBS)
TEST_BINS += tests/unit/test_virtq
tests/unit/test_virtq: tests/unit/test_virtq.o $(HVCORE_PURE_OBJS) $(PT_A) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBVHD_LIBS)
