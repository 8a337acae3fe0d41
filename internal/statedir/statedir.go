// Package statedir makes sure a directory the daemon writes its files into
// (status, last server, broker list, rotated logs; the known keys under
// tofu) is its own: a real directory, owned by the daemon's user or by
// root, that no other user may write to. Another user who can write there
// could plant links or replace the files the daemon and LuCI read.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mode is what a missing directory is created with: the daemon's user
// writes, its group (LuCI's reader is root anyway) reads.
const Mode fs.FileMode = 0o750

// Ensure creates dir with Mode when it is missing (its parents as 0755)
// and then checks it as Check does.
func Ensure(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("state directory %s: %w", dir, err)
		}
		err := os.Mkdir(dir, Mode)
		switch {
		case err == nil:
			// Mode whatever the umask, on the directory just made: not
			// through a link another user put in its place meanwhile.
			if err := chmodNoFollow(dir, Mode); err != nil {
				return fmt.Errorf("state directory %s: %w", dir, err)
			}
		case !errors.Is(err, fs.ErrExist): // not another process's at the same time
			return fmt.Errorf("state directory %s: create: %w%s", dir, err, hint(err))
		}
	}
	return Check(dir)
}

func chmodNoFollow(dir string, mode fs.FileMode) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return nil
}

// Check refuses dir unless it is a directory (not a symlink to one) owned
// by this process's effective uid or by root, not writable by others, nor
// by a group other than root's or the process's, and writable by this
// process.
func Check(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("state directory %s is a symbolic link: gogoc writes only into a real directory", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state directory %s: no owner information", dir)
	}
	return check(dir, owner{uid: int(st.Uid), gid: int(st.Gid), perm: fi.Mode().Perm()},
		unix.Geteuid(), unix.Getegid(), func() error { return unix.Access(dir, unix.W_OK|unix.X_OK) })
}

type owner struct {
	uid, gid int
	perm     fs.FileMode
}

// check applies the rules to what Lstat found; writable tells whether
// the process may create files there.
func check(dir string, o owner, euid, egid int, writable func() error) error {
	switch {
	case o.uid != euid && o.uid != 0:
		return fmt.Errorf("state directory %s belongs to uid %d, not to this daemon's uid %d: remove it, or chown it to the daemon's user", dir, o.uid, euid)
	case o.perm&0o002 != 0:
		return fmt.Errorf("state directory %s is writable by every user (mode %04o): chmod o-w it", dir, o.perm)
	case o.perm&0o020 != 0 && o.gid != egid && o.gid != 0:
		return fmt.Errorf("state directory %s is writable by group %d (mode %04o), not the daemon's: chmod g-w it", dir, o.gid, o.perm)
	}
	if err := writable(); err != nil {
		return fmt.Errorf("state directory %s is not writable by uid %d (owner uid %d, mode %04o): create it owned by the daemon's user: %w", dir, euid, o.uid, o.perm, err)
	}
	return nil
}

// hint says what to do about a directory the process may not create.
func hint(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Sprintf(" (uid %d cannot create it: have it created owned by the daemon's user, as the OpenWrt init script does)", unix.Geteuid())
	}
	return ""
}
