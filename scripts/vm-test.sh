#!/usr/bin/env bash
# VM lane: every test that touches the kernel, run inside a Linux 6.1
# kernel of a router architecture under qemu (tcg): the kernel data planes
# (sit, sit+fou, ip6tnl), gogoc's own rtnetlink requests, router mode's
# addresses, routes and forwarding, RAs and RSs on a veth pair with a SLAAC
# host, the WAN watch, and gogoc run in router mode against tspbroker.
#
#   scripts/vm-test.sh [amd64|arm64|arm|mipsle|mips]     (or ARCH=...; default amd64)
#   scripts/vm-test.sh --prepare ARCH    kernel, guest tools and packages only
#
# amd64, arm64 (cortex-a53, virt), arm (armhf, cortex-a15, virt) and mipsle
# (4Kc, malta) boot Debian's own kernels. mips (big-endian, 24Kc, malta),
# the CPU of the most common OpenWrt routers, has no Debian kernel: it is
# built from Debian's linux-source-6.1 (scripts/vm/build-kernel.sh) and its
# busybox, ip and rdisc6 from Debian's sources (scripts/vm/build-tools.sh),
# both kept in the cache. The other guests get busybox, ip, ping and rdisc6
# from Debian's packages for their architecture. The lane installs the host
# packages it needs (qemu, the cross compiler...) itself.
#
# Environment:
#   ARCH            guest architecture (amd64)
#   VM_TESTS        what runs in the guest: lines "package run-pattern
#                   [skip-pattern]" (default: the table below)
#   VM_BENCH        1 (default): run the throughput comparison; 0: skip it
#   VM_IDLE         1: also count the idle daemon's wake-ups over a whole
#                   30 s keepalive period (adds ~35 s; off by default)
#   VM_BENCH_SECS   seconds per measured path (2), split into
#   VM_BENCH_ROUNDS rounds (4) taken in turns; each path keeps its best
#   VM_BREAK        a deliberate fault; the lane must then fail:
#                   fouport    the test broker encapsulates to a wrong port
#                   byteorder  gogoc writes a route's output interface
#                              (RTA_OIF) little-endian instead of in host
#                              order (build tag gogoc_break_byteorder): the
#                              big-endian guest must fail, little-endian
#                              guests cannot see it
#   VM_SMP, VM_MEM  guest CPUs (1) and memory in MiB (512)
#   VM_TIMEOUT      seconds the guest may run (1500)
#   VM_CACHE        kernels, guest tools and private apt state
#                   (/var/cache/gogoc-vm as root, else ~/.cache/gogoc-vm)
#   VM_VERBOSE      non-empty: show the guest's console as it runs
#
# Exit status: 0 only if every selected test in the guest passed. A skip
# inside the VM is a failure (the lane exists to run those tests; a tool
# missing in the guest must not pass as a skip), and so is a selection
# that matched no test. The last line is a summary row for the README's
# table of architectures.
set -euo pipefail

prepare=0
if [[ ${1:-} == --prepare ]]; then
	prepare=1
	shift
fi
ARCH=${1:-${ARCH:-amd64}}
# package, -test.run pattern, -test.skip pattern: every test of these
# packages that needs a kernel, by name patterns that pick up new tests
# of the same kind (a new TestKernel* in tunnel/, any test in rtlink/,
# router/ and lan/, radv's tests on a real link, its capability test and
# its own RA encoder and RS parser, whose byte order the mips guest checks).
VM_TESTS=${VM_TESTS:-"./tunnel ^(TestKernel|TestDataPlane)
./internal/rtlink .
./router .
./radv OnLink|Marshal|ParseRS|Advertisement|Capabilities
./lan .
./daemon WAN
./cmd/gogoc ^(TestKernel|TestRouter.*E2E)"}
VM_BENCH=${VM_BENCH:-1}
VM_IDLE=${VM_IDLE:-0}
VM_BENCH_SECS=${VM_BENCH_SECS:-2}
VM_BENCH_ROUNDS=${VM_BENCH_ROUNDS:-4}
VM_BREAK=${VM_BREAK:-}
VM_SMP=${VM_SMP:-1}
VM_MEM=${VM_MEM:-512}
VM_TIMEOUT=${VM_TIMEOUT:-1500}
if [[ -n ${VM_CACHE:-} ]]; then
	CACHE=$VM_CACHE
elif [[ $(id -u) == 0 ]]; then
	CACHE=/var/cache/gogoc-vm
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/gogoc-vm
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES="tun veth sit fou fou6 ip6_tunnel bridge"
# Debian packages of the guest's tools, and of the libraries they link.
GUEST_DEBS="busybox-static dash iproute2 ndisc6 iputils-ping libc6 libbpf1 libelf1 zlib1g libmnl0 libbsd0 libmd0 libcap2 libidn2-0 libunistring2"
GUEST_TOOLS="ip rdisc6 ping"

hostpkgs=(busybox-static binutils gzip xz-utils zstd)
kargs=
case $ARCH in
amd64)
	debarch=amd64 flavour=amd64 qemu=qemu-system-x86_64 hostpkgs+=(qemu-system-x86)
	goenv=(GOARCH=amd64) console=ttyS0
	machine=(-accel tcg)
	# The IO-APIC timer check fails when an emulated CPU on a loaded host
	# is slow (panic "IO-APIC + timer doesn't work").
	kargs=no_timer_check
	;;
arm64)
	debarch=arm64 flavour=arm64 qemu=qemu-system-aarch64 hostpkgs+=(qemu-system-arm)
	goenv=(GOARCH=arm64) console=ttyAMA0
	machine=(-accel tcg -M virt -cpu cortex-a53)
	;;
arm)
	debarch=armhf flavour=armmp qemu=qemu-system-arm hostpkgs+=(qemu-system-arm)
	goenv=(GOARCH=arm GOARM=7) console=ttyAMA0
	machine=(-accel tcg -M virt -cpu cortex-a15)
	;;
mipsle)
	debarch=mipsel flavour=4kc-malta qemu=qemu-system-mipsel hostpkgs+=(qemu-system-mips)
	goenv=(GOARCH=mipsle GOMIPS=softfloat) console=ttyS0
	machine=(-accel tcg -M malta)
	;;
mips)
	debarch='' qemu=qemu-system-mips
	hostpkgs+=(qemu-system-mips gcc-mips-linux-gnu libc6-dev-mips-cross binutils-mips-linux-gnu
		linux-source-6.1 bc flex bison libssl-dev make gcc libc6-dev bzip2 dpkg-dev)
	goenv=(GOARCH=mips GOMIPS=softfloat) console=ttyS0
	machine=(-accel tcg -M malta -cpu 24Kc)
	;;
*)
	echo "vm-test: unknown ARCH $ARCH (amd64, arm64, arm, mipsle, mips)" >&2
	exit 2
	;;
esac

log() { echo "vm-test: $*" >&2; }
die() {
	log "$*"
	exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_start=$(now)
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || die "go not found"

# --- host packages ------------------------------------------------------------
# shellcheck source=SCRIPTDIR/lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"
mapfile -t missing < <(apt_missing "${hostpkgs[@]}")
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
	log "installing ${missing[*]}"
	apt_install --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi

# --- kernel and guest tools ---------------------------------------------------
# Foreign architectures use a private apt state in the cache, so that the
# host's dpkg architectures and package lists stay untouched.
apt_arch() {
	if [[ $debarch == "$(dpkg --print-architecture)" ]]; then
		"$@"
		return
	fi
	local st=$CACHE/apt-$debarch
	mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
	[[ -f $st/status ]] || : >"$st/status"
	"$@" -o APT::Architecture="$debarch" -o APT::Architectures="$debarch" \
		-o Dir::State::Lists="$st/lists" -o Dir::State::status="$st/status" \
		-o Dir::Cache="$st/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
}

# prune_kernel keeps the kernel image and the net modules: the cache stays
# at tens of MB instead of hundreds.
prune_kernel() {
	local mods
	rm -rf "${1:?}/usr"
	for mods in "$1"/lib/modules/*/kernel; do
		find "$mods" -mindepth 1 -maxdepth 1 ! -name net ! -name drivers -exec rm -rf {} +
		find "$mods/drivers" -mindepth 1 -maxdepth 1 ! -name net -exec rm -rf {} +
	done
}

# in_root ROOT PATH prints the file PATH names inside ROOT (an unpacked
# package tree), following symbolic links inside ROOT, not on the host.
in_root() {
	local root=$1 p=$2 n=0 l
	while [[ -L $root$p ]] && ((n++ < 16)); do
		l=$(readlink "$root$p")
		if [[ $l == /* ]]; then p=$l; else p=$(dirname "$p")/$l; fi
	done
	[[ -f $root$p ]] && echo "$root$p"
}

# guest_copy ROOT DEST SRC DST copies the program SRC of ROOT to DST in the
# guest tree DEST with its ELF interpreter and the shared libraries it
# needs, recursively, from ROOT (never from the host).
guest_copy() {
	local root=$1 dest=$2 src=$3 dst=$4 f lib path interp
	f=$(in_root "$root" "$src") || die "$src is not in the unpacked packages"
	mkdir -p "$dest$(dirname "$dst")"
	cp "$f" "$dest$dst"
	interp=$(readelf -l "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
	if [[ -n $interp && ! -e $dest$interp ]]; then
		path=$(in_root "$root" "$interp") || die "$src: interpreter $interp is not in the unpacked packages"
		mkdir -p "$dest$(dirname "$interp")"
		cp "$path" "$dest$interp"
	fi
	for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[[ -n $(find "$dest" -name "$lib" -print -quit) ]] && continue
		path=$(cd "$root" && find lib usr/lib -name "$lib" 2>/dev/null | sort | head -n 1)
		[[ -n $path ]] || die "$src needs $lib, which none of GUEST_DEBS has ($GUEST_DEBS)"
		guest_copy "$root" "$dest" "/$path" "/$path"
	done
}

if [[ $ARCH == mips ]]; then
	kdir=$("$ROOT/scripts/vm/build-kernel.sh" "$CACHE") || die "building the mips kernel failed"
	kernel=$kdir/vmlinux
	modroot=$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	guest=$("$ROOT/scripts/vm/build-tools.sh" "$CACHE") || die "building the mips guest tools failed"
	# busybox ping stands in for iputils' ping here (the tests use -6 -c -i -W).
	kname="linux $(cut -d' ' -f1 "$kdir/ready") (built, 24Kc malta)"
else
	kdir=$CACHE/$ARCH
	mkdir -p "$kdir"
	if [[ $debarch != "$(dpkg --print-architecture)" ]] &&
		! compgen -G "$CACHE/apt-$debarch/lists/*_Packages*" >/dev/null; then
		log "fetching the $debarch package lists into $CACHE/apt-$debarch"
		apt_arch apt-get update >/dev/null || die "apt-get update for $debarch failed"
	fi
	if [[ ! -f $kdir/ready ]]; then
		kpkg=$(apt_arch apt-cache search --names-only "^linux-image-6\\.1\\.0-[0-9]+-$flavour\$" |
			awk '{ print $1 }' | sort -V | tail -n 1)
		[[ -n $kpkg ]] || die "no linux-image-6.1.0-*-$flavour package known to apt"
		log "fetching $kpkg"
		rm -rf "$kdir/deb" "$kdir/root"
		mkdir -p "$kdir/deb" "$kdir/root"
		(cd "$kdir/deb" && apt_arch apt-get download "$kpkg" >/dev/null 2>&1) || die "apt-get download $kpkg failed"
		dpkg -x "$kdir"/deb/*.deb "$kdir/root"
		rm -rf "$kdir/deb"
		prune_kernel "$kdir/root"
		echo "$kpkg" >"$kdir/ready"
	fi
	# The guest's tools from Debian's packages of the same architecture.
	guest=$kdir/guest
	if [[ ! -f $guest/ready || $(cat "$guest/ready") != "$GUEST_DEBS" ]]; then
		log "fetching the guest tools for $debarch ($GUEST_TOOLS, busybox)"
		rm -rf "$kdir/deb" "$kdir/user" "$guest"
		mkdir -p "$kdir/deb" "$kdir/user" "$guest"
		# shellcheck disable=SC2086 # one package a word
		(cd "$kdir/deb" && apt_arch apt-get download $GUEST_DEBS >/dev/null 2>&1) ||
			die "apt-get download $GUEST_DEBS failed"
		for deb in "$kdir"/deb/*.deb; do dpkg -x "$deb" "$kdir/user"; done
		guest_copy "$kdir/user" "$guest" /bin/busybox /bin/busybox
		# Debian's busybox sh runs its own applets before PATH (ip among
		# them): the tests' `sh -c` scripts get dash, which does not.
		guest_copy "$kdir/user" "$guest" /bin/dash /bin/sh
		for tool in $GUEST_TOOLS; do
			src=$(cd "$kdir/user" && find bin sbin usr/bin usr/sbin -name "$tool" 2>/dev/null | head -n 1)
			[[ -n $src ]] || die "no $tool in GUEST_DEBS"
			guest_copy "$kdir/user" "$guest" "/$src" "/usr/sbin/$tool"
		done
		rm -rf "$kdir/deb" "$kdir/user"
		echo "$GUEST_DEBS" >"$guest/ready"
	fi
	kernel=$(find "$kdir/root/boot" -name 'vmlinu[xz]-*' | head -n 1)
	modroot=$(find "$kdir/root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	kname=$(cat "$kdir/ready")
fi
[[ -n $kernel && -f $kernel ]] || die "no kernel image in $kdir"
[[ -x $guest/bin/busybox ]] || die "no busybox for $ARCH in $guest"
if ((prepare)); then
	log "$ARCH ready: $kname, guest tools in $guest ($(elapsed "$t_start") s)"
	exit 0
fi

# --- initramfs ----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gva-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ir=$work/initramfs
mkdir -p "$ir/modules" "$ir/tests" "$ir/pkg"
cp -a "$guest/." "$ir/"
rm -f "$ir/ready"
cp "$ROOT/scripts/vm/init" "$ir/init"
chmod 755 "$ir/init"

# Modules in dependency order, from each module's depends= field.
declare -A seen=()
order=()
modfile() { find "$modroot" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -n 1; }
add_module() {
	local m=$1 f deps d
	[[ -n ${seen[$m]:-} ]] && return
	seen[$m]=1
	f=$(modfile "$m")
	[[ -n $f ]] || die "module $m not in $modroot"
	case $f in
	*.xz) xz -dc "$f" >"$ir/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$ir/modules/$m.ko" ;;
	*) cp "$f" "$ir/modules/$m.ko" ;;
	esac
	deps=$(tr '\0' '\n' <"$ir/modules/$m.ko" | sed -n 's/^depends=//p' | head -n 1)
	for d in ${deps//,/ }; do add_module "$d"; done
	order+=("$m")
}
for m in $MODULES; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$ir/modules/order"

t_build=$(now)
tags=()
case $VM_BREAK in
'' | fouport) ;;
byteorder) tags=(-tags gogoc_break_byteorder) ;;
*) die "unknown VM_BREAK $VM_BREAK (fouport, byteorder)" ;;
esac
gobuild() { (cd "$ROOT" && env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go "$@"); }
: >"$ir/tests/list"
while read -r pkg run skip; do
	[[ -n $pkg ]] || continue
	name=$(basename "$pkg")
	gobuild test -c "${tags[@]}" -ldflags '-s -w' -o "$ir/tests/$name.test" "$pkg" ||
		die "building the tests of $pkg failed"
	[[ -f $ir/tests/$name.test ]] || die "$pkg has no tests"
	# Tests read testdata relative to their package directory.
	mkdir -p "$ir/pkg/$name"
	[[ -d $ROOT/$pkg/testdata ]] && cp -r "$ROOT/$pkg/testdata" "$ir/pkg/$name/"
	echo "$name $run ${skip:--}" >>"$ir/tests/list"
done <<<"$VM_TESTS"
# The programs as `make build` makes them: the daemon measured as a
# process of its own, and both for the end-to-end tests.
mkdir -p "$ir/usr/sbin"
for cmd in gogoc tspbroker; do
	gobuild build "${tags[@]}" -trimpath -ldflags '-s -w' -o "$ir/usr/sbin/$cmd" "./cmd/$cmd" ||
		die "building $cmd failed"
done
log "test binaries built in $(elapsed "$t_build") s"

bench=0
[[ $VM_BENCH == 1 ]] && bench=1
{
	printf 'GOGOC_VM_BENCH=%q\n' "$bench"
	printf 'GOGOC_VM_IDLE=%q\n' "$VM_IDLE"
	printf 'GOGOC_VM_BENCH_SECONDS=%q\n' "$VM_BENCH_SECS"
	printf 'GOGOC_VM_BENCH_ROUNDS=%q\n' "$VM_BENCH_ROUNDS"
	printf 'GOGOC_VM_BREAK=%q\n' "$VM_BREAK"
	printf 'GOGOC_VM_GOGOC=%q\n' /usr/sbin/gogoc
	printf 'GOGOC_VM_TSPBROKER=%q\n' /usr/sbin/tspbroker
	printf 'GOGOC_VM_TOOLS=%q\n' "$GUEST_TOOLS"
} >"$ir/vm.env"
(cd "$ir" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$work/initramfs.gz"

# --- boot -------------------------------------------------------------------
out=$work/console.log
log "booting $(basename "$kernel") ($ARCH, $VM_SMP CPU, $VM_MEM MiB, initramfs $(($(stat -c %s "$work/initramfs.gz") >> 20)) MiB)"
t_vm=$(now)
set +e
timeout "$VM_TIMEOUT" "$qemu" "${machine[@]}" -nographic -nic none -no-reboot \
	-smp "$VM_SMP" -m "$VM_MEM" -kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append "console=$console quiet loglevel=3 panic=-1 rdinit=/init${kargs:+ $kargs}" </dev/null |
	sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | tee "$out" | { if [[ -n ${VM_VERBOSE:-} ]]; then cat; else cat >/dev/null; fi; }
qrc=${PIPESTATUS[0]}
set -e
vm_time=$(elapsed "$t_vm")

# --- report -----------------------------------------------------------------
fail=0
echo "== VM lane ($ARCH, $kname)"
if grep -E '^@@GOGOC-VM-(MODULE|TOOL)-FAIL' "$out"; then
	fail=1
fi
# Every test and subtest result, with the package binary it came from.
awk '
	/^@@GOGOC-VM-BEGIN / { bin = $2 }
	/^ *--- (PASS|FAIL|SKIP): / {
		res = $2; sub(":", "", res); name = $3
		printf "%-4s %s %s %s\n", res, bin, name, $4
	}' "$out" | tee "$work/results"
grep -E 'THROUGHPUT|RATIO|FIGURE' "$out" | sed -E 's/^ *[a-z0-9_]+\.go:[0-9]+: //' || true
if ! grep -q '^@@GOGOC-VM-DONE' "$out"; then
	log "the guest did not finish (qemu exit $qrc); last console lines:"
	tail -n 40 "$out" >&2
	fail=1
fi
if grep -E '^@@GOGOC-VM-END .* rc=[1-9]' "$out"; then
	fail=1
fi
if grep -q '^FAIL' "$work/results"; then
	fail=1
fi
# A skip inside the VM means the lane did not test it.
skips=$(grep '^SKIP' "$work/results" || true)
if [[ $VM_BENCH != 1 ]]; then
	skips=$(grep -v ' TestKernelThroughput ' <<<"$skips" || true)
fi
if [[ -n $skips ]]; then
	log "tests skipped inside the VM:"
	echo "$skips" >&2
	fail=1
fi
# Each selection must have run something: a renamed test must not leave
# a package silently untested.
while read -r name run skip; do
	if ! grep -q "^PASS $name.test " "$work/results"; then
		log "no test of $name passed in the guest (-test.run $run, -test.skip $skip)"
		fail=1
	fi
done <"$ir/tests/list"
if ((fail)) && [[ -z ${VM_VERBOSE:-} ]]; then
	# The output of each failed top-level test (go test -v prints a test's
	# log before its result line), and any panic.
	awk '
		/^=== RUN   [^\/]*$/ { n = 0 }
		{ buf[n++] = $0 }
		/^--- FAIL: / { for (i = (n > 80 ? n - 80 : 0); i < n; i++) print buf[i]; n = 0 }
		/^panic:/ { p = 1 }
		p { print }
	' "$out" | head -n 400 >&2
fi
boot=$(sed -n 's/^@@GOGOC-VM-BOOTED //p' "$out")
echo "VM cycle: ${vm_time} s (qemu start to power-off; guest booted in ${boot:-?} s), total ${ARCH} lane $(elapsed "$t_start") s"
result=PASS
((fail)) && result=FAIL
# One row of the README's table of architectures, from this run.
fig() {
	awk -v k="$1" '{ l = $0; gsub(/ +/, " ", l) }
		i = index(l, k) { s = substr(l, i + length(k)); if (match(s, /[0-9]+(\.[0-9]+)?/)) { v = substr(s, RSTART, RLENGTH); exit } }
		END { print (v == "" ? "n/a" : v) }' "$out"
}
passed=$(grep -c '^PASS' "$work/results" || true)
printf 'VM summary: | %s | %s (%s tests passed, %s s) | %s | %s | %s MiB sit, %s MiB sit+fou |\n' \
	"$ARCH" "$result" "$passed" "$(elapsed "$t_start")" \
	"$(fig 'RATIO kernel-sit+fou/kernel-sit ')" "$(fig 'RATIO userspace-v6udpv4/kernel-sit+fou ')" \
	"$(fig 'FIGURE daemon-rss kernel-v6v4 ')" "$(fig 'FIGURE daemon-rss kernel-v6udpv4 ')"
echo "VM lane: $result"
((fail == 0))
