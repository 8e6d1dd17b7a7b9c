#!/usr/bin/env bash
# test-nbd-fio-verify.sh -- fio (ioengine=nbd) random writes into a
# differencing child served by the nbdkit vhd plugin, checked by fio itself:
#  - rw=randwrite with a 4k/64k block size mix, iodepth=16, 64 MiB at an
#    offset that is not block-aligned, verify=crc32c: the read-back pass
#    after the writes finds every block intact (do_verify=1);
#  - after the server is stopped and a new one started, a verify-only pass
#    of the same job finds every block intact (the data persisted);
#  - the same verify-only pass against the unwritten base fails (so a
#    passing verify means something);
#  - outside fio's range the child still reads as the base; the base file
#    is unchanged; vhdtool check of the chain is clean.
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"

M=$((1 << 20))
OFF=$((3 * M))		# fio's range [3 MiB, 67 MiB) of a 96 MiB disk
LEN=$((64 * M))

# The base: random 1 MiB chunks every 3 MiB (2 MiB blocks: every block of
# the range is touched by fio in the child, half of them over base data).
mkrandom base.raw 96
$VHDTOOL convert -q -O vhd base.raw base.vhd || die "convert base failed"
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
base_sum=$(sum base.vhd)

# run_fio IMAGE TAG PLUGIN_ARGS EXTRA_OPTIONS...: serve IMAGE with a fresh
# nbdkit (with PLUGIN_ARGS) and run the fio job against it; fio's terse
# output in TAG.terse, its log in TAG.log.
run_fio() {
	local img=$1 tag=$2 pargs=$3
	shift 3
	nbdkit -U - "$PLUGIN" file="$img" $pargs --run "fio --name=$tag --ioengine=nbd --uri=\"\$uri\" \
		--rw=randwrite --bssplit=4k/50:64k/50 --iodepth=16 \
		--offset=$OFF --size=$LEN --verify=crc32c --randseed=4242 \
		--output-format=terse --terse-version=3 $* >$tag.terse 2>$tag.log"
}
# terse_kb TAG read|write: KiB transferred (terse v3 fields 6 and 47).
terse_kb() {
	awk -F';' -v f=$([ "$2" = read ] && echo 6 || echo 47) '{ print $f }' "$1.terse" | tail -n1
}

# 1. Write and verify in one run.
run_fio child.vhd write "" --do_verify=1 ||
	die "fio randwrite + verify failed: $(cat write.log write.terse | tail -n 20)"
[ "$(terse_kb write write)" -eq $((LEN / 1024)) ] ||
	die "fio wrote $(terse_kb write write) KiB, want $((LEN / 1024))"
[ "$(terse_kb write read)" -eq $((LEN / 1024)) ] ||
	die "fio verified $(terse_kb write read) KiB, want $((LEN / 1024))"
echo "ok: randwrite of $((LEN / M)) MiB verified in the same session"

# 2. A new server, read-only (a verify pass has nothing to write): verify
# only.  The child file is not changed by it.
child_sum=$(sum child.vhd)
run_fio child.vhd verify readonly=true --verify_only=1 ||
	die "fio verify-only after a server restart failed: $(cat verify.log verify.terse | tail -n 20)"
[ "$(terse_kb verify read)" -eq $((LEN / 1024)) ] ||
	die "fio's verify-only pass read $(terse_kb verify read) KiB, want $((LEN / 1024))"
[ "$(sum child.vhd)" = "$child_sum" ] || die "the verify-only pass changed the child file"
echo "ok: verify-only after a restart"

# 3. The same verification must fail on data fio never wrote.
cp base.vhd scratch.vhd
if run_fio scratch.vhd negative readonly=true --verify_only=1; then
	die "fio verify-only passed on the unwritten base: the verify proves nothing"
fi
grep -q '^verify: bad magic header' negative.log negative.terse ||
	die "fio verify-only on the base failed, but not by a verify error: $(head -n 5 negative.log)"
echo "ok: verify-only fails on the unwritten base"

# 4. Outside fio's range: the base's bytes.  The base file is untouched.
$VHDTOOL read --offset 0 --length "$OFF" child.vhd >head.bin || die "vhdtool read failed"
$VHDTOOL read --offset $((OFF + LEN)) child.vhd >tail.bin || die "vhdtool read failed"
head -c "$OFF" base.raw | cmp - head.bin || die "the child's first $OFF bytes differ from the base"
tail -c +$((OFF + LEN + 1)) base.raw | cmp - tail.bin || die "the child after fio's range differs from the base"
[ "$(sum base.vhd)" = "$base_sum" ] || die "writing the child changed the base file"
$VHDTOOL check child.vhd >check.out 2>&1 || die "vhdtool check after fio: $(cat check.out)"
echo "fio verify through NBD as expected"
