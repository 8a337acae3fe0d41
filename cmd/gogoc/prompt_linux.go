package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal asks the kernel for terminal attributes: only a tty has them.
// A mode check would not do, as /dev/null is a character device too.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
