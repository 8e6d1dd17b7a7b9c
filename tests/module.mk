# tests: unit tests (cmocka), fuzz target replay, integration scripts.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:.c=)
TEST_HELPER_OBJS := tests/unit/model.o
TEST_BINS += $(UNIT_BINS) tests/fuzz/fuzz_open_replay

$(UNIT_BINS): %: %.o $(TEST_HELPER_OBJS) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(LIBVHD_A) $(CMOCKA_LIBS) $(LIBVHD_LIBS)

tests/unit/%.o: CPPFLAGS += -Ilibvhd $(CMOCKA_CFLAGS)

# The fuzz target: replayed over its corpus by make check; built with
# libFuzzer by `make fuzz` after ./configure --enable-fuzz.
tests/fuzz/fuzz_open.o: CPPFLAGS += -Ilibvhd
tests/fuzz/fuzz_open_replay: tests/fuzz/fuzz_open.o tests/fuzz/replay_main.o $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBVHD_LIBS)

fuzz: tests/fuzz/fuzz_open
tests/fuzz/fuzz_open: tests/fuzz/fuzz_open.c $(LIBVHD_SRCS)
	@test -n "$(FUZZ_CC)" || { echo "run ./configure --enable-fuzz first"; exit 1; }
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CPPFLAGS) -Ilibvhd -o $@ $^ $(LIBVHD_LIBS)

CLEAN += tests/fuzz/fuzz_open

# Small C helpers used by integration scripts (e.g. to craft bad images).
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:.c=)
TEST_BINS += $(HELPER_BINS)
tests/helpers/%.o: CPPFLAGS += -Ilibvhd
$(HELPER_BINS): %: %.o $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBVHD_A) $(LIBVHD_LIBS)
