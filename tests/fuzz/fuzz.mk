# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# libFuzzer targets (clang, ASan + UBSan) over ttrpc framing and protobuf
# decoding. Built from the sources directly, instrumented; libprotobuf-c
# itself is the uninstrumented system library. tests/run.sh runs each
# through tests/fuzz/run_fuzzer.sh for a bounded time.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/tests/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_SRCS := user/ttrpc.c user/util.c $(OUTPUT)/proto/ttrpc.pb-c.c \
	$(OUTPUT)/proto/agent.pb-c.c
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE \
	-I$(OUTPUT)/proto -Iuser

fuzz: $(FUZZ_BINS)
tests: fuzz

$(OUTPUT)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRCS) user/ttrpc.h \
		user/util.h $(PROTO_H) | $(OUTPUT)/tests/fuzz
	$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB_SRCS) -lprotobuf-c -lpthread -o $@

$(OUTPUT)/tests/fuzz:
	mkdir -p $@
