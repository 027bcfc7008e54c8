# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The VM suite: fentry/kprobe/tracepoint modes on Debian's stock kernels,
# booted with qemu TCG (see tests/vm/run.sh and the README's "Kernel matrix
# and the VM suite").
#
# make test-vm        build everything, then run the VM suite alone
# make test-vm-run    run it on what is built (tests/run.sh's last stage);
#                     fetches/caches kernels and builds the initramfs itself
# make vm-initramfs   only build $(OUTPUT)/vm/initramfs.cpio
#
# VM_MATRIX, VM_JOBS, VM_TIMEOUT, VM_SUITE_TIMEOUT, VM_MEM tune a run.

.PHONY: test-vm test-vm-run vm-initramfs

test-vm: tests
	OUTPUT=$(OUTPUT) tests/vm/run.sh

test-vm-run:
	OUTPUT=$(OUTPUT) tests/vm/run.sh

vm-initramfs: tests
	OUTPUT=$(OUTPUT) tests/vm/mkinitramfs.sh $(OUTPUT)/vm/initramfs.cpio
