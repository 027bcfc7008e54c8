# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make bench`: the benchmarks of tests/bench (not part of `make test`).
# tests/bench/*.c each become $(OUTPUT)/tests/bench/<name>; run.sh runs
# every figure and prints the table, then the BENCH lines.
# BENCH_VM=0 skips the VM part (fentry/kprobe ratios print nan).
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(OUTPUT)/tests/bench/%,$(BENCH_SRCS))

$(OUTPUT)/tests/bench:
	mkdir -p $@

$(OUTPUT)/tests/bench/%: tests/bench/%.c $(LIB) | $(OUTPUT)/tests/bench
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

bench-bins: $(VOLTRACE) $(BENCH_BINS) $(TOOL_BINS) peer

bench: bench-bins
	OUTPUT=$(OUTPUT) tests/bench/run.sh

.PHONY: bench-bins
