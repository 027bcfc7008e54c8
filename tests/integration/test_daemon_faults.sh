#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The daemon under faults: agent killed and restarted, hybrid-vsock agent,
# a secret volume on tmpfs (remounted, then unmounted), a watched source
# removed, forced ring-buffer drops (4 KiB ring buffer + a rename flood).
# Real kernel BPF, real daemon, the Go peer as agent.
. "$(dirname "$0")/daemon_lib.sh"

FLOOD=${FLOOD:-$OUTPUT/tests/tools/rename_flood}
KUBELET_WRITER=${KUBELET_WRITER:-$OUTPUT/tests/tools/kubelet_writer}

vt_init
start_peer agent || { not_ok "kata-peer starts"; finish; }
start_peer hv -hvsock -port 1024 || { not_ok "hvsock kata-peer starts"; finish; }
AGENT=unix://$TMP/agent.sock
HVAGENT=hvsock://$TMP/hv.sock:1024


V1=$(vol cm1 configmap)
kw "$V1" a=1
VH=$(vol hv configmap)
kw "$VH" h=1
VS=$(vol sec secret)
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$VS" || not_ok "mount tmpfs"
at_exit "umount -l '$VS'"
KW_MODE=0400 kw "$VS" token=t1 ca.crt=c1
VR=$(vol doomed configmap)
kw "$VR" x=1
VF=$(vol flood configmap)
kw "$VF" f=0

RING_BUFFER_SIZE=4096
write_config "" "$V1|$AGENT|$SHARED/c1/cm1" "$VH|$HVAGENT|$SHARED/h1/hv" \
	"$VS|$AGENT|$SHARED/s1/sec" "$VR|$AGENT|$SHARED/r1/doomed" \
	"$VF|$AGENT|$SHARED/f1/flood"
start_daemon || { not_ok "daemon starts (mode $VT_TEST_MODE)"; finish; }
ok "daemon starts with a 4 KiB ring buffer"

check "initial copies" eval 'wait_conv "$V1" "$(g c1/cm1)" 20 &&
	wait_conv "$VH" "$(g h1/hv)" 20 && wait_conv "$VS" "$(g s1/sec)" 20 &&
	wait_conv "$VR" "$(g r1/doomed)" 20 && wait_conv "$VF" "$(g f1/flood)" 20'

# Hybrid vsock (Firecracker / Cloud Hypervisor).
kw "$VH" h=2 k=new
check "hybrid-vsock agent: update" wait_conv "$VH" "$(g h1/hv)"

# Secret on tmpfs.
KW_MODE=0400 kw "$VS" token=t2 ca.crt=c1
check "secret on tmpfs: update" wait_conv "$VS" "$(g s1/sec)"
# Remounted: a fresh tmpfs over the old one (which stays, so that its
# device number cannot be handed out again: with a reused number the
# identity is unchanged and the filter simply keeps matching). A new
# (dev, ino): re-registered, then live again.
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$VS"
at_exit "umount -l '$VS'"
KW_MODE=0400 kw "$VS" token=t3
check "secret on tmpfs: remounted volume converges" wait_conv "$VS" "$(g s1/sec)" 10
check "secret on tmpfs: re-registration logged" \
	grep -q 'msg="watched source re-registered"' "$DLOG"
KW_MODE=0400 kw "$VS" token=t4
check "secret on tmpfs: live after re-registration" wait_conv "$VS" "$(g s1/sec)"
# Unmounted for good (pod gone): leaves the registry.
umount "$VS"
umount "$VS"
check "secret on tmpfs: unmount removes the watch" \
	wait_for 5 eval '! ctl list | grep -q "$SHARED/s1/sec"'

# Source directory removed.
rm -rf "$VR"
check "removed source leaves the registry" \
	wait_for 5 eval '! ctl list | grep -q "$SHARED/r1/doomed"'
check "removed source: logged" grep -q 'msg="watched source disappeared' "$DLOG"

# Agent killed, updates meanwhile, agent back.
stop_peer agent KILL
kw "$V1" a=2 b=while-agent-down
sleep 0.5
start_peer agent
check "agent killed and restarted: converges" wait_conv "$V1" "$(g c1/cm1)" 15
check "agent killed and restarted: reconnect logged" \
	grep -q 'msg="agent reconnected' "$DLOG"
check "daemon alive after agent restart" daemon_alive

# Forced ring-buffer drops: flood renames in a watched dir, commit an
# update in the middle of it; the drop counter moves, every watch is
# reconciled, the guest converges.
"$FLOOD" "$VF" 60000 &
fpid=$!
"$KUBELET_WRITER" "$VF" f=during-flood g=1
wait "$fpid"
"$KUBELET_WRITER" "$VF" f=after-flood g=2
"$FLOOD" "$VF" 20000
check "ring buffer drops detected" \
	wait_for 5 grep -q 'msg="ring buffer dropped events' "$DLOG"
check "drops: guest converges" wait_conv "$VF" "$(g f1/flood)" 15
check "drops: other watches still converged" wait_conv "$V1" "$(g c1/cm1)" 5
check "daemon alive after the flood" daemon_alive
grep -o 'dropped_total=[0-9]*' "$DLOG" | tail -n 1 | sed 's/^/# ring buffer: /'

# A stuck agent (every call sleeps 30 s) holds one worker at most:
# the other agents' volumes keep converging, and SIGTERM still exits
# after the bounded wait for in-flight calls.
start_peer slow -delay 30s
VW=$(vol stuck configmap)
kw "$VW" s=1
ctl watch "$VW" --agent "unix://$TMP/slow.sock" --dest "$SHARED/w1/stuck" >/dev/null 2>&1
sleep 0.3
kw "$V1" a=3 b=with-a-stuck-agent
kw "$VH" h=3
check "a stuck agent does not hold up the others" eval \
	'wait_conv "$V1" "$(g c1/cm1)" 5 && wait_conv "$VH" "$(g h1/hv)" 5'

t0=${EPOCHREALTIME/./}
kill_daemon TERM
t1=${EPOCHREALTIME/./}
check "SIGTERM with a call in flight: exit status 0" test "$DRC" -eq 0
check "SIGTERM with a call in flight: bounded wait ($(((t1 - t0) / 1000)) ms)" \
	test $((t1 - t0)) -lt 8000000
stop_peer slow KILL
latency_summary
finish
