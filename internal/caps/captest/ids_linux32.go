//go:build arm || 386

package captest

import "golang.org/x/sys/unix"

// The 32-bit id calls: the plain ones take 16-bit ids on these.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
