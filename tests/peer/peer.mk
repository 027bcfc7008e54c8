# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The Go conformance peer (test tooling, not shipped). Built offline in
# GOPATH mode against Debian's golang-github-containerd-ttrpc-dev;
# CGO_ENABLED=0 makes it static so it also runs inside a VM initramfs.
PEER := $(OUTPUT)/tests/kata-peer
PEER_GOENV := GO111MODULE=off CGO_ENABLED=0 \
	GOPATH=$(abspath $(OUTPUT))/gopath:/usr/share/gocode \
	GOCACHE=$(abspath $(OUTPUT))/gocache GOFLAGS=

peer: $(PEER)

$(PEER): tests/peer/kata-peer.go | $(OUTPUT)/tests
	$(PEER_GOENV) $(GO) build -o $@ tests/peer/kata-peer.go
