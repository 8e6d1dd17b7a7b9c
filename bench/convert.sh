#!/usr/bin/env bash
# convert.sh -- raw -> dynamic VHD: vhdtool convert vs qemu-img convert -O vpc
# and cp --sparse=always of the same file, side by side in each round.
. "$(dirname "$0")/lib.sh"
need qemu-img
make_source
: "${CASES:=vhdtool qemu-img cp-sparse}"
: "${VARIANTS:=sparse dense}"
out=$WORK/out
res=$WORK/convert.tsv
: > "$res"

cmd_for() {
	case $1 in
	vhdtool)   echo "$VHDTOOL convert -q -O vhd $2 $out" ;;
	qemu-img)  echo "qemu-img convert -f raw -O vpc $2 $out" ;;
	cp-sparse) echo "cp --sparse=always $2 $out" ;;
	vhdtool-direct) echo "$VHDTOOL convert -q --direct -O vhd $2 $out" ;;
	qemu-img-tnone) echo "qemu-img convert -t none -T none -f raw -O vpc $2 $out" ;;
	esac
}

for run in $(seq 1 "$RUNS"); do
	for variant in $VARIANTS; do
		src=$WORK/src.raw; [ "$variant" = dense ] && src=$WORK/src-dense.raw
		for c in $CASES; do
			rm -f "$out"; drop_caches
			t0=$(now)
			$(cmd_for "$c" "$src") && sync "$out"
			t1=$(now)
			secs=$(echo "$t1 - $t0" | bc -l)
			printf '%s\t%s\t%s\t%s\n' "$variant" "$c" "$run" "$secs" >> "$res"
			log "run $run $variant $c: ${secs}s"
		done
	done
done

bytes=$(( SIZE_MIB * 1048576 ))
printf '\n## convert %d MiB raw (%d%% data) -> dynamic VHD, %d runs, median\n\n' "$SIZE_MIB" "$DATA_PCT" "$RUNS"
printf '| source | case | median s | MB/s | vs qemu-img | vs cp --sparse |\n|---|---|---|---|---|---|\n'
for variant in $VARIANTS; do
	for c in $CASES; do
		m=$(awk -v v="$variant" -v c="$c" '$1==v && $2==c {print $4}' "$res" | median)
		# ratio per round, then the median of the ratios
		rq=$(awk -v v="$variant" -v c="$c" '$1==v {t[$2,$3]=$4} END {for (k in t) {split(k,a,SUBSEP); if (a[1]==c && (("qemu-img",a[2]) in t)) print t["qemu-img",a[2]]/t[k]}}' "$res" | median)
		rc=$(awk -v v="$variant" -v c="$c" '$1==v {t[$2,$3]=$4} END {for (k in t) {split(k,a,SUBSEP); if (a[1]==c && (("cp-sparse",a[2]) in t)) print t["cp-sparse",a[2]]/t[k]}}' "$res" | median)
		printf '| %s | %s | %.2f | %.0f | %.2f | %.2f |\n' "$variant" "$c" "$m" \
			"$(echo "$bytes / $m / 1000000" | bc -l)" "${rq:-0}" "${rc:-0}"
	done
done
printf '\n(ratios are speed ratios: >1 means faster than the reference; median of per-round ratios)\n'
