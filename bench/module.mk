# bench: programs the benchmark scripts run (built by `make bench`).
BENCH_BINS := bench/aiobench

bench/aiobench: bench/aiobench.o $(PT_A) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PT_A) $(LIBVHD_A) $(LIBVHD_LIBS)

CLEAN += $(BENCH_BINS)
