#!/usr/bin/env bash
# test-cli-usage.sh -- vhdtool's command line: --help of every verb exits 0
# with a usage text on stdout; an unknown verb, an unknown option and missing
# arguments exit 2 with exactly one line on stderr (and touch nothing).
. "$TOP/tests/functions.sh"

verbs="create info check convert snapshot write read discard compact repair reparent"

# Run a command, keeping its exit status in ./rc (expect_fail hides it).
rc_of() { "$@"; local r=$?; echo "$r" >"$T/rc"; return "$r"; }

# Top level.
$VHDTOOL --help >help.out 2>help.err || die "vhdtool --help exited $?"
grep -q '^usage: vhdtool' help.out || die "vhdtool --help: no usage line: $(cat help.out)"
[ ! -s help.err ] || die "vhdtool --help wrote to stderr: $(cat help.err)"
for v in $verbs; do
	grep -qw "$v" help.out || die "vhdtool --help does not list the verb $v"
done
$VHDTOOL --version >ver.out || die "vhdtool --version exited $?"
grep -q '^vhdtool [0-9]' ver.out || die "vhdtool --version: $(cat ver.out)"

# No verb at all: usage on stderr, exit 2.  (A multi-line usage is fine here:
# nothing was asked, so the usage is the answer.)
$VHDTOOL >none.out 2>none.err
rc=$?
[ "$rc" -eq 2 ] || die "vhdtool without a verb exited $rc, want 2"
grep -q 'usage' none.err || die "vhdtool without a verb: no usage on stderr: $(cat none.err)"

# Every verb's --help (also -h, and --help after other arguments).
for v in $verbs; do
	for h in --help -h; do
		$VHDTOOL "$v" "$h" >"$v.out" 2>"$v.err" || die "vhdtool $v $h exited $?"
		grep -q "^usage: vhdtool $v " "$v.out" || die "vhdtool $v $h: no usage line: $(cat "$v.out")"
		[ ! -s "$v.err" ] || die "vhdtool $v $h wrote to stderr: $(cat "$v.err")"
	done
done
$VHDTOOL info some-file --help >late.out 2>&1 || die "vhdtool info FILE --help exited $?"
grep -q '^usage: vhdtool info' late.out || die "vhdtool info FILE --help: $(cat late.out)"

# Unknown verb.
expect_fail rc_of $VHDTOOL frobnicate x.vhd
[ "$(cat rc)" -eq 2 ] || die "unknown verb: exit $(cat rc), want 2"
case $ERR in *frobnicate*) ;; *) die "unknown verb: message does not name it: $ERR" ;; esac

# A real image for the verbs that need one.
$VHDTOOL create -q --size 4M img.vhd || die "create failed"
head -c 4096 /dev/urandom >data.bin
before=$(sum img.vhd)

# Missing arguments: exit 2, one line each.
check_usage() {	# check_usage WHAT CMD...
	local what=$1
	shift
	expect_fail rc_of "$@"
	[ "$(cat rc)" -eq 2 ] || die "$what: exit $(cat rc), want 2 ($*)"
}
check_usage "info without FILE" $VHDTOOL info
check_usage "check without FILE" $VHDTOOL check
check_usage "create without FILE" $VHDTOOL create --size 1M
check_usage "create without --size" $VHDTOOL create new.vhd
[ ! -e new.vhd ] || die "create without --size left new.vhd behind"
check_usage "convert without DST" $VHDTOOL convert img.vhd
check_usage "convert without SRC and DST" $VHDTOOL convert
check_usage "snapshot without CHILD" $VHDTOOL snapshot img.vhd
check_usage "info with two files" $VHDTOOL info img.vhd img.vhd
check_usage "write without IMAGE" $VHDTOOL write
check_usage "read without IMAGE" $VHDTOOL read
check_usage "compact without IMAGE" $VHDTOOL compact
check_usage "repair without IMAGE" $VHDTOOL repair
check_usage "reparent without --parent" $VHDTOOL reparent img.vhd
check_usage "reparent without CHILD" $VHDTOOL reparent --parent img.vhd

# Unknown options: exit 2, one line (getopt's own complaint must not be a
# second line), naming the option.
for v in $verbs; do
	case $v in
	create) args="--size 1M opt.vhd" ;;
	convert) args="img.vhd out.img" ;;
	snapshot) args="img.vhd child.vhd" ;;
	write) args="img.vhd data.bin" ;;
	reparent) args="--parent img.vhd img.vhd" ;;
	*) args="img.vhd" ;;
	esac
	check_usage "$v --no-such-option" $VHDTOOL "$v" --no-such-option $args
	case $ERR in *no-such-option*) ;; *) die "$v: message does not name the unknown option: $ERR" ;; esac
	check_usage "$v -Z" $VHDTOOL "$v" -Z $args
done
[ ! -e opt.vhd ] && [ ! -e out.img ] && [ ! -e child.vhd ] ||
	die "a refused command created its output"

# Bad option values.
check_usage "create --size without its value" $VHDTOOL create x.vhd --size
[ ! -e x.vhd ] || die "create x.vhd --size created x.vhd"
check_usage "create --type bogus" $VHDTOOL create --type bogus --size 1M t.vhd
check_usage "convert -O qcow2" $VHDTOOL convert -O qcow2 img.vhd out.qcow2
check_usage "convert --type diff" $VHDTOOL convert --type diff img.vhd out.vhd
check_usage "convert to an unknown extension" $VHDTOOL convert img.vhd out.xyz
check_usage "info --size-rule bogus" $VHDTOOL info --size-rule bogus img.vhd
check_usage "read --offset 10Q" $VHDTOOL read --offset 10Q img.vhd
check_usage "write --offset -5" $VHDTOOL write --offset -5 img.vhd data.bin

[ "$(sum img.vhd)" = "$before" ] || die "img.vhd changed"
echo "all usage checks passed"
