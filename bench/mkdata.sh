#!/usr/bin/env bash
# Create the deterministic test data (no-op if up to date; FORCE=1 remakes):
#   work/src.raw        SIZE_MIB sparse raw image: DATA_PCT% of its CHUNK_MIB
#                       chunks hold AES-CTR pseudo-random (incompressible) data
#                       at SEED-chosen positions; every other chunk is a hole.
#   work/src-dense.raw  same bytes, zeros physically written (no holes), i.e.
#                       what you get from dd'ing a real disk.
#   work/src.layout     sorted list of data chunk indexes
#   work/pristine.vhd   qemu-img convert -O vpc (dynamic) of src.raw: the VHD
#                       every VHD target serves or converts (qemu-nbd,
#                       vhdimount, vhdkit's nbdkit plugin and vhdtool mount)
. "$(dirname "$0")/lib.sh"
need openssl shuf qemu-img

stamp="size=$SIZE_MIB chunk=$CHUNK_MIB pct=$DATA_PCT seed=$SEED vpc=$VPC_OPTS"
if [[ "${FORCE:-0}" != 1 && -f "$WORK/.stamp" && "$(cat "$WORK/.stamp")" == "$stamp" \
      && -f "$WORK/pristine.vhd" ]]; then
    log "data up to date ($stamp)"; exit 0
fi
rm -f "$WORK"/src*.raw "$WORK"/pristine.* "$WORK/.stamp"

nchunks=$(( SIZE_MIB / CHUNK_MIB ))
ndata=$(( nchunks * DATA_PCT / 100 ))
prng() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" -in /dev/zero 2>/dev/null; }

log "layout: $ndata of $nchunks chunks of ${CHUNK_MIB} MiB are data (seed $SEED)"
shuf -i "0-$(( nchunks - 1 ))" -n "$ndata" --random-source=<(prng "layout-$SEED") \
    | sort -n > "$WORK/src.layout"

log "writing $WORK/src.raw"
truncate -s "${SIZE_MIB}M" "$WORK/src.raw"
# one dd per chunk, all reading successive CHUNK_MIB blocks of the same stream
prng "data-$SEED" | {
    while read -r -u 3 i; do
        dd of="$WORK/src.raw" bs="${CHUNK_MIB}M" seek="$i" count=1 \
           conv=notrunc iflag=fullblock status=none
    done 3< "$WORK/src.layout"
} || true   # openssl dies of SIGPIPE at the end

log "writing $WORK/src-dense.raw"
cp --sparse=never "$WORK/src.raw" "$WORK/src-dense.raw"

log "writing $WORK/pristine.vhd"
# shellcheck disable=SC2086
qemu-img convert -f raw -O vpc $VPC_OPTS "$WORK/src.raw" "$WORK/pristine.vhd"
sync
echo "$stamp" > "$WORK/.stamp"

for f in src.raw src-dense.raw pristine.vhd; do
    printf '%-16s apparent %12d  allocated %12d\n' "$f" \
        "$(size_apparent "$WORK/$f")" "$(size_alloc "$WORK/$f")" >&2
done
