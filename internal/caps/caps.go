// Package caps tells which Linux capabilities the process holds, and turns
// a permission error of an operation that needs a capability the process
// lacks into one that names it: "create tun device gogoc: operation not
// permitted (needs CAP_NET_ADMIN)" instead of a bare EPERM.
//
// gogoc needs two: CAP_NET_ADMIN (links, addresses, routes, fou ports,
// TUN devices, forwarding sysctls, forced socket buffers) and CAP_NET_RAW
// (raw sockets: ICMP keepalive, Router Advertisements, the userspace
// protocol-41 and IPv4-in-IPv6 planes).
package caps

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a capability number, as in linux/capability.h.
type Cap uint

// The capabilities gogoc uses.
const (
	NetAdmin Cap = unix.CAP_NET_ADMIN
	NetRaw   Cap = unix.CAP_NET_RAW
)

// names are linux/capability.h's, in number order.
var names = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// String is the capability's name, e.g. CAP_NET_ADMIN.
func (c Cap) String() string {
	if int(c) < len(names) {
		return "CAP_" + names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Set is a set of capabilities, bit n for capability n.
type Set uint64

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// String lists the names, comma-separated, or "none".
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	var b strings.Builder
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(c.String())
		}
	}
	return b.String()
}

// State is what the process runs with.
type State struct {
	UID, EUID, GID, EGID                                 int
	Effective, Permitted, Inheritable, Ambient, Bounding Set
	// All is every capability this kernel knows (0..cap_last_cap).
	All        Set
	NoNewPrivs bool
}

// Current reads the calling thread's credentials and capabilities
// (capget and prctl; no /proc needed). gogoc never changes them, so every
// thread of the process has the same.
func Current() (State, error) {
	s := State{UID: unix.Getuid(), EUID: unix.Geteuid(), GID: unix.Getgid(), EGID: unix.Getegid()}
	var err error
	if s.Effective, s.Permitted, s.Inheritable, err = capget(); err != nil {
		return s, err
	}
	for c := Cap(0); c < 64; c++ {
		// PR_CAPBSET_READ fails with EINVAL past the kernel's last one.
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break
		}
		s.All |= 1 << c
		if in == 1 {
			s.Bounding |= 1 << c
		}
		// Ambient capabilities exist since Linux 4.3; older kernels
		// answer EINVAL, which leaves the set empty.
		if amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); err == nil && amb == 1 {
			s.Ambient |= 1 << c
		}
	}
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil {
		s.NoNewPrivs = nnp == 1
	}
	return s, nil
}

// capget returns the effective, permitted and inheritable sets.
func capget() (eff, perm, inh Set, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit halves
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, err
	}
	join := func(lo, hi uint32) Set { return Set(lo) | Set(hi)<<32 }
	return join(data[0].Effective, data[1].Effective),
		join(data[0].Permitted, data[1].Permitted),
		join(data[0].Inheritable, data[1].Inheritable), nil
}

// Full reports whether the process holds every capability.
func (s State) Full() bool { return s.All != 0 && s.Effective&s.All == s.All }

// Has reports whether c is effective.
func (s State) Has(c Cap) bool { return s.Effective.Has(c) }

// Summary is a one-line description for the start-up log.
func (s State) Summary() string {
	var b strings.Builder
	if s.EUID == 0 {
		b.WriteString("running as root")
	} else {
		b.WriteString("running as uid " + strconv.Itoa(s.EUID) + " gid " + strconv.Itoa(s.EGID))
	}
	lacks := s.All &^ s.Effective
	switch {
	case s.Full():
		b.WriteString(" with all capabilities")
	case s.All != 0 && bits.OnesCount64(uint64(lacks)) < bits.OnesCount64(uint64(s.Effective)):
		// Root in a container often lacks a few: name those.
		b.WriteString(" with all capabilities but " + lacks.String())
	default:
		b.WriteString(" with capabilities " + s.Effective.String())
	}
	if s.Ambient != 0 {
		b.WriteString(" (ambient " + s.Ambient.String() + ")")
	}
	if s.NoNewPrivs {
		b.WriteString(", no_new_privs")
	}
	return b.String()
}

// MissingError is a permission error of an operation that needs a
// capability the process does not hold.
type MissingError struct {
	Cap Cap
	Err error // the operation's error, with its errno
}

func (e *MissingError) Error() string { return e.Err.Error() + " (needs " + e.Cap.String() + ")" }

// Unwrap returns the operation's error.
func (e *MissingError) Unwrap() error { return e.Err }

// Annotate returns err as a *MissingError naming c when err is a
// permission error (EPERM, EACCES) and the process lacks c; otherwise err
// unchanged. A process that holds c got its EPERM for another reason, and
// naming c would send the reader the wrong way.
func Annotate(err error, c Cap) error {
	if err == nil || !isPermission(err) {
		return err
	}
	eff, _, _, cerr := capget()
	return annotate(err, c, eff, cerr == nil)
}

func annotate(err error, c Cap, eff Set, known bool) error {
	if !isPermission(err) || (known && eff.Has(c)) {
		return err
	}
	var m *MissingError
	if errors.As(err, &m) {
		return err // already named further down
	}
	return &MissingError{Cap: c, Err: err}
}

func isPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// IsMissing reports whether err, or an error it wraps, is a *MissingError,
// and which capability it names.
func IsMissing(err error) (Cap, bool) {
	var m *MissingError
	if errors.As(err, &m) {
		return m.Cap, true
	}
	return 0, false
}
