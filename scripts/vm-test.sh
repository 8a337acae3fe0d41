#!/usr/bin/env bash
# VM lane: run the kernel data-plane tests (TestKernel*, TestDataPlane*) in
# Debian's own kernel under qemu, since the CI host has no sit/fou/ip6tnl.
#
#   scripts/vm-test.sh [amd64|arm64|mipsle]      (or ARCH=...; default amd64)
#
# Environment:
#   ARCH            guest architecture (amd64; arm64 and mipsle on demand)
#   VM_PKGS         Go packages whose tests run in the guest (./tunnel
#                   ./cmd/gogoc ./internal/rtlink); the guest also gets gogoc itself, built
#                   as `make build` does, for TestKernelDaemonIdle
#   VM_RUN          -test.run pattern (^(TestKernel|TestDataPlane))
#   VM_BENCH        1 (default): run the throughput comparison; 0: skip it
#   VM_IDLE         1: also count the idle daemon's wake-ups over a whole
#                   30 s keepalive period (adds ~35 s; off by default)
#   VM_BENCH_SECS   seconds per measured path (2), split into
#   VM_BENCH_ROUNDS rounds (4) taken in turns; each path keeps its best
#   VM_BREAK        a deliberate fault: "fouport" makes the test broker
#                   encapsulate to a wrong port; the lane must then fail
#   VM_SMP, VM_MEM  guest CPUs (1) and memory in MiB (512)
#   VM_CACHE        kernel cache (${XDG_CACHE_HOME:-$HOME/.cache}/gogoc-vm)
#
# The kernel is fetched with apt-get download and unpacked with dpkg -x into
# the cache: nothing is installed on the host but the qemu/busybox packages.
# Exit status: 0 only if every test in the guest passed (a skip inside the
# VM counts as a failure: the lane exists to run them).
set -euo pipefail

ARCH=${1:-${ARCH:-amd64}}
VM_PKGS=${VM_PKGS:-./tunnel ./cmd/gogoc ./internal/rtlink}
VM_RUN=${VM_RUN:-^(TestKernel|TestDataPlane)}
VM_BENCH=${VM_BENCH:-1}
VM_IDLE=${VM_IDLE:-0}
VM_BENCH_SECS=${VM_BENCH_SECS:-2}
VM_BENCH_ROUNDS=${VM_BENCH_ROUNDS:-4}
VM_BREAK=${VM_BREAK:-}
VM_SMP=${VM_SMP:-1}
VM_MEM=${VM_MEM:-512}
CACHE=${VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gogoc-vm}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES="tun veth sit fou fou6 ip6_tunnel"

case $ARCH in
amd64)
	debarch=amd64 flavour=amd64 qemu=qemu-system-x86_64 qpkg=qemu-system-x86
	goenv=(GOARCH=amd64) console=ttyS0
	machine=(-accel tcg)
	;;
arm64)
	debarch=arm64 flavour=arm64 qemu=qemu-system-aarch64 qpkg=qemu-system-arm
	goenv=(GOARCH=arm64) console=ttyAMA0
	machine=(-accel tcg -M virt -cpu cortex-a53)
	;;
mipsle)
	debarch=mipsel flavour=4kc-malta qemu=qemu-system-mipsel qpkg=qemu-system-mips
	goenv=(GOARCH=mipsle GOMIPS=softfloat) console=ttyS0
	machine=(-accel tcg -M malta)
	;;
*)
	echo "vm-test: unknown ARCH $ARCH (amd64, arm64, mipsle)" >&2
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

# --- host tools -------------------------------------------------------------
need=()
command -v "$qemu" >/dev/null || need+=("$qpkg")
[[ -x /bin/busybox ]] && /bin/busybox cpio --help >/dev/null 2>&1 || need+=(busybox-static)
if ((${#need[@]})); then
	[[ $(id -u) == 0 ]] || die "missing ${need[*]}: install them (apt-get install ${need[*]})"
	log "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; } ||
		die "apt-get install ${need[*]} failed"
fi

# --- kernel (and, for foreign architectures, busybox) from Debian ----------
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

kdir=$CACHE/$ARCH
mkdir -p "$kdir"
if [[ ! -f $kdir/ready ]]; then
	if [[ $debarch != "$(dpkg --print-architecture)" ]] &&
		! compgen -G "$CACHE/apt-$debarch/lists/*_Packages*" >/dev/null; then
		log "fetching the $debarch package lists into $CACHE/apt-$debarch"
		apt_arch apt-get update >/dev/null || die "apt-get update for $debarch failed"
	fi
	kpkg=$(apt_arch apt-cache search --names-only "^linux-image-6\\.1\\.0-[0-9]+-$flavour\$" |
		awk '{ print $1 }' | sort -V | tail -n 1)
	[[ -n $kpkg ]] || die "no linux-image-6.1.0-*-$flavour package known to apt"
	log "fetching $kpkg"
	rm -rf "$kdir/deb" "$kdir/root"
	mkdir -p "$kdir/deb" "$kdir/root"
	pkgs=("$kpkg")
	[[ $debarch == "$(dpkg --print-architecture)" ]] || pkgs+=(busybox-static)
	(cd "$kdir/deb" && apt_arch apt-get download "${pkgs[@]}" >/dev/null 2>&1) || die "apt-get download ${pkgs[*]} failed"
	for deb in "$kdir"/deb/*.deb; do dpkg -x "$deb" "$kdir/root"; done
	rm -rf "$kdir/deb"
	prune_kernel "$kdir/root"
	echo "$kpkg" >"$kdir/ready"
fi
kernel=$(find "$kdir/root/boot" -name 'vmlinu[xz]-*' | head -n 1)
[[ -n $kernel ]] || die "no kernel image in $kdir/root/boot"
modroot=$(find "$kdir/root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
busybox=/bin/busybox
[[ $debarch == "$(dpkg --print-architecture)" ]] || busybox=$kdir/root/bin/busybox
[[ -x $busybox ]] || die "no busybox for $debarch"

# --- initramfs ----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gva-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ir=$work/initramfs
mkdir -p "$ir/bin" "$ir/modules" "$ir/tests"
cp "$busybox" "$ir/bin/busybox"
cp "$ROOT/scripts/vm/init" "$ir/init"
chmod 755 "$ir/init"

# A native guest also gets the host's iproute2 and ping with their
# libraries: tests built on the shared namespace lab (tunnel/lab_test.go)
# call them. Foreign guests run the Go-driven tests only.
copy_with_libs() {
	local src=$1 dst=$2 lib
	mkdir -p "$ir$(dirname "$dst")"
	cp -L "$src" "$ir$dst"
	for lib in $(ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		mkdir -p "$ir$(dirname "$lib")"
		cp -L "$lib" "$ir$lib"
	done
}
if [[ $debarch == "$(dpkg --print-architecture)" ]]; then
	for tool in ${VM_HOST_TOOLS-ip ping}; do
		src=$(command -v "$tool") || { log "no $tool on the host: not in the guest"; continue; }
		copy_with_libs "$src" "/usr/sbin/$tool"
	done
fi

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
for p in $VM_PKGS; do
	name=$(basename "$p")
	(cd "$ROOT" && env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go test -c -o "$ir/tests/$name.test" "$p") ||
		die "building the tests of $p failed"
done
# The daemon measured as a process of its own (its RSS is its own).
mkdir -p "$ir/usr/sbin"
(cd "$ROOT" && env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go build -trimpath -ldflags '-s -w' -o "$ir/usr/sbin/gogoc" ./cmd/gogoc) ||
	die "building gogoc failed"
log "test binaries built in $(elapsed "$t_build") s"

bench=0
[[ $VM_BENCH == 1 ]] && bench=1
{
	printf 'GOGOC_VM_RUN=%q\n' "$VM_RUN"
	printf 'GOGOC_VM_BENCH=%q\n' "$bench"
	printf 'GOGOC_VM_IDLE=%q\n' "$VM_IDLE"
	printf 'GOGOC_VM_BENCH_SECONDS=%q\n' "$VM_BENCH_SECS"
	printf 'GOGOC_VM_BENCH_ROUNDS=%q\n' "$VM_BENCH_ROUNDS"
	printf 'GOGOC_VM_BREAK=%q\n' "$VM_BREAK"
	printf 'GOGOC_VM_GOGOC=%q\n' /usr/sbin/gogoc
} >"$ir/vm.env"
(cd "$ir" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$work/initramfs.gz"

# --- boot -------------------------------------------------------------------
out=$work/console.log
log "booting $(basename "$kernel") ($ARCH, $VM_SMP CPU, $VM_MEM MiB)"
t_vm=$(now)
set +e
timeout 600 "$qemu" "${machine[@]}" -nographic -nic none -no-reboot \
	-smp "$VM_SMP" -m "$VM_MEM" -kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append "console=$console quiet loglevel=3 panic=-1 rdinit=/init" </dev/null |
	sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | tee "$out" | { if [[ -n ${VM_VERBOSE:-} ]]; then cat; else cat >/dev/null; fi; }
qrc=${PIPESTATUS[0]}
set -e
vm_time=$(elapsed "$t_vm")

# --- report -----------------------------------------------------------------
fail=0
echo "== VM lane ($ARCH, $(cat "$kdir/ready"))"
if grep -q '^@@GOGOC-VM-MODULE-FAIL' "$out"; then
	grep '^@@GOGOC-VM-MODULE-FAIL' "$out"
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
if ! grep -q '^PASS' "$work/results"; then
	log "no test passed in the guest"
	fail=1
fi
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
if ((fail)); then
	echo "VM lane: FAIL"
	exit 1
fi
echo "VM lane: PASS"
