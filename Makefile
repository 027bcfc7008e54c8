# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# voltrace build. Everything lands in $(OUTPUT):
#   bpf/*.bpf.c   -> $(OUTPUT)/*.bpf.o -> $(OUTPUT)/*.skel.h   (clang, bpftool)
#   proto/*.proto -> $(OUTPUT)/proto/*.pb-c.[ch]                (protoc-c)
#   user/*.c      -> $(OUTPUT)/libvoltrace.a + $(OUTPUT)/voltrace
#   tests/...     -> $(OUTPUT)/tests/...
#
# make deps      install the Debian packages needed (fresh Debian 12, as root)
# make           build voltrace
# make demo      build and run the built-in demo
# make test      run the whole test suite (what .ci/run calls)
# make vmlinux   regenerate vmlinux/$(ARCH)/vmlinux.h from this kernel's BTF
# make V=1 ...   print every command in full

OUTPUT ?= build

# Quiet by default, as libbpf-bootstrap's Makefiles: one line per step;
# V=1 prints the commands themselves.
ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PROTOC_C ?= protoc-c
GO ?= go

# CI builds with warnings as errors; locally they stay warnings.
WERROR := $(if $(CI),-Werror,)
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra $(WERROR) -std=gnu11 -D_GNU_SOURCE \
	  -I$(OUTPUT) -I$(OUTPUT)/proto -Ibpf -Iuser
# Each object records the headers it really includes ($(OUTPUT)/**/*.d).
DEPFLAGS = -MMD -MP
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall $(WERROR) \
	      -I$(OUTPUT) -Ibpf -Ivmlinux/$(ARCH)
LDLIBS := -lbpf -lelf -lz -lprotobuf-c -ljson-c -lyaml -lmicrohttpd -lcrypto -lpthread

DEB_PACKAGES := make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
	libzstd-dev pkg-config protobuf-c-compiler libprotobuf-c-dev \
	libcmocka-dev libyaml-dev libjson-c-dev libmicrohttpd-dev \
	golang-go golang-github-containerd-ttrpc-dev \
	golang-github-gogo-protobuf-dev libclang-rt-14-dev \
	prometheus qemu-system-x86 busybox-static cpio iproute2 procps \
	libssl-dev curl

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))

PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(OUTPUT)/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
PROTO_OBJS := $(PROTO_C:.c=.o)

USER_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
LIB := $(OUTPUT)/libvoltrace.a
VOLTRACE := $(OUTPUT)/voltrace

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUTPUT)/tests/tools/%,$(TOOL_SRCS))

.PHONY: all deps demo test test-unit test-integration test-vm bench fuzz \
	vmlinux clean tests peer
.DELETE_ON_ERROR:
# Generated BPF objects and skeletons are kept, not treated as intermediates.
.SECONDARY: $(BPF_OBJS) $(SKELS)

all: $(VOLTRACE)

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

vmlinux:
	@echo "vmlinux.h from /sys/kernel/btf/vmlinux of kernel $$(uname -r)"
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

# ---- BPF ------------------------------------------------------------------
# DWARF is stripped (BTF stays); a failing llvm-strip fails the build.
$(OUTPUT)/%.bpf.o: bpf/%.bpf.c vmlinux/$(ARCH)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@
	$(Q)llvm-strip -g $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# ---- protobuf-c -----------------------------------------------------------
$(OUTPUT)/proto/%.pb-c.c $(OUTPUT)/proto/%.pb-c.h: proto/%.proto | $(OUTPUT)/proto
	$(call msg,PROTOC,$<)
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(OUTPUT)/proto $<

$(OUTPUT)/proto/%.pb-c.o: $(OUTPUT)/proto/%.pb-c.c $(PROTO_H)
	$(call msg,CC,$@)
	$(Q)$(CC) $(filter-out -Wextra,$(CFLAGS)) -c $< -o $@

# ---- userspace ------------------------------------------------------------
# Generated headers must exist before the first compile (order-only); after
# that the .d files name the ones each object really includes.
$(OUTPUT)/user/%.o: user/%.c | $(SKELS) $(PROTO_H) $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB): $(USER_OBJS) $(PROTO_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $(OUTPUT)/libvoltrace.a $(USER_OBJS) $(PROTO_OBJS)

# Named in an explicit rule so make does not treat the generated headers as
# intermediates (it deleted them after a build, breaking test compiles).
$(LIB): $(PROTO_H)

$(VOLTRACE): $(OUTPUT)/user/main.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# ---- tests ----------------------------------------------------------------
$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIB) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) $< $(LIB) $(LDLIBS) -lcmocka -o $@

$(OUTPUT)/tests/tools/%: tests/tools/%.c $(LIB) | $(OUTPUT)/tests/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) $< $(LIB) $(LDLIBS) -o $@

tests: $(VOLTRACE) $(UNIT_BINS) $(TOOL_BINS) peer

# Plain include: a missing .mk is an error, never silently missing targets.
include tests/peer/peer.mk
include tests/fuzz/fuzz.mk
include tests/vm/vm.mk
include tests/bench/bench.mk

test-unit: $(UNIT_BINS)
	tests/run.sh unit

test-integration: tests
	tests/run.sh integration

# The README's test command. tests/run.sh prints the final
# "N passed, N failed" line over every stage.
test: tests
	tests/run.sh all

demo: $(VOLTRACE) peer $(OUTPUT)/tests/tools/treecmp
	tests/demo.sh

$(OUTPUT) $(OUTPUT)/proto $(OUTPUT)/user $(OUTPUT)/tests $(OUTPUT)/tests/tools:
	mkdir -p $@

clean:
	rm -rf $(OUTPUT)

-include $(shell find $(OUTPUT) -name '*.d' 2>/dev/null)
