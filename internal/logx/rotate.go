package logx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// rotating is a log file that is moved aside (or emptied, with deleteOld or
// keep 0) before a line would take it to limit bytes (spec §12.6), keeping
// at most keep moved-aside files: the old client kept every one, which on a
// router fills the RAM the log directory lives in.
//
// Every name is resolved in the directory opened once at the start, and
// none is followed if it is a symbolic link: the log directory is in RAM
// that other programs write to, so a planted link must not make the daemon
// append to, truncate or rename over some other file.
type rotating struct {
	dir       *os.File // the log file's directory
	name      string   // the log file's name in dir
	path      string   // for messages
	f         *os.File
	size      int64
	rotate    bool
	limit     int64
	deleteOld bool
	keep      int
	now       func() time.Time
}

func openRotating(path string, rotate bool, limit int64, deleteOld bool, keep int, now func() time.Time) (*rotating, error) {
	dirName, name := filepath.Split(path)
	if dirName == "" {
		dirName = "."
	}
	if name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("log file %s: not a file name", path)
	}
	if err := os.MkdirAll(dirName, 0o755); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	dir, err := os.Open(dirName)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	if st, err := dir.Stat(); err != nil || !st.IsDir() {
		dir.Close()
		return nil, fmt.Errorf("log file %s: %s is not a directory", path, dirName)
	}
	r := &rotating{dir: dir, name: name, path: path, rotate: rotate, limit: limit, deleteOld: deleteOld, keep: keep, now: now}
	if err := r.open(unix.O_APPEND); err != nil {
		dir.Close()
		return nil, err
	}
	// A smaller log_rotation_keep than last time takes effect at once.
	if list, err := r.list(); err == nil {
		r.prune(list)
	}
	return r, nil
}

// open opens the log file for writing, creating it. It refuses a symbolic
// link (O_NOFOLLOW), anything but a plain file (O_NONBLOCK keeps a planted
// FIFO from blocking the open) and a file with other hard links.
func (r *rotating) open(mode int) error {
	fd, err := unix.Openat(int(r.dir.Fd()), r.name,
		unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|mode, 0o640)
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("log file %s is a symbolic link; not following it: %w", r.path, err)
	}
	if err != nil {
		return fmt.Errorf("log file %s: %w", r.path, err)
	}
	f := os.NewFile(uintptr(fd), r.path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return fmt.Errorf("log file %s: %w", r.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		f.Close()
		return fmt.Errorf("log file %s is not a plain file of its own (mode %#o, %d links); not writing to it", r.path, st.Mode, st.Nlink)
	}
	r.f, r.size = f, st.Size
	return nil
}

const stampLayout = "20060102150405"

// rotatedName is <name-before-last-dot>.YYYYMMDDhhmmss<.ext>, or
// <name>.YYYYMMDDhhmmss without a dot; n > 0 adds -n after the stamp, for a
// second rotation within one second.
func rotatedName(name, stamp string, n int) string {
	prefix, ext := rotatedParts(name)
	if n > 0 {
		stamp += "-" + strconv.Itoa(n)
	}
	return prefix + stamp + ext
}

// rotatedParts splits name into what comes before and after the stamp of
// its rotated files.
func rotatedParts(name string) (prefix, ext string) {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i+1], name[i:]
	}
	return name + ".", ""
}

// rotatedStamp tells whether entry is one of this log's rotated files and
// returns its stamp and -n.
func (r *rotating) rotatedStamp(entry string) (stamp string, n int, ok bool) {
	prefix, ext := rotatedParts(r.name)
	mid, ok := strings.CutPrefix(entry, prefix)
	if !ok {
		return "", 0, false
	}
	if mid, ok = strings.CutSuffix(mid, ext); !ok || len(mid) < len(stampLayout) {
		return "", 0, false
	}
	stamp, tail := mid[:len(stampLayout)], mid[len(stampLayout):]
	if !allDigits(stamp) {
		return "", 0, false
	}
	if tail != "" {
		num, found := strings.CutPrefix(tail, "-")
		if !found || !allDigits(num) {
			return "", 0, false
		}
		var err error
		if n, err = strconv.Atoi(num); err != nil || n == 0 {
			return "", 0, false
		}
	}
	return stamp, n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (r *rotating) write(line string) error {
	if r.f == nil {
		if err := r.open(unix.O_APPEND); err != nil {
			return err
		}
	}
	if r.rotate && r.size > 0 && r.size+int64(len(line)) >= r.limit {
		if err := r.f.Close(); err != nil {
			return err
		}
		r.f = nil
		if !r.deleteOld && r.keep > 0 {
			if err := r.moveAside(); err != nil {
				return err
			}
		}
		if err := r.open(unix.O_TRUNC); err != nil {
			return err
		}
	}
	n, err := r.f.WriteString(line)
	r.size += int64(n)
	return err
}

// rotated is one moved-aside file of this log.
type rotated struct {
	name  string
	stamp string
	n     int
}

// list returns the log's rotated files, oldest first by the stamp in
// their names. Pointers: sorting them reuses the generic sort code every
// pointer type shares, where a slice of structs would link its own copy
// (12 KB of the mips binary).
func (r *rotating) list() ([]*rotated, error) {
	if _, err := r.dir.Seek(0, 0); err != nil {
		return nil, err
	}
	names, err := r.dir.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var list []*rotated
	for _, e := range names {
		if s, n, ok := r.rotatedStamp(e); ok {
			list = append(list, &rotated{e, s, n})
		}
	}
	slices.SortFunc(list, func(a, b *rotated) int {
		if c := strings.Compare(a.stamp, b.stamp); c != 0 {
			return c
		}
		return a.n - b.n
	})
	return list, nil
}

// moveAside renames the log to its rotated name and prunes. A second
// rotation within the same second gets the next -n above every file of
// that second, never a number freed by pruning, so the names stay in
// order.
func (r *rotating) moveAside() error {
	list, err := r.list()
	if err != nil {
		return fmt.Errorf("log file %s: rotating: %w", r.path, err)
	}
	stamp := r.now().Format(stampLayout)
	n := 0
	for _, o := range list {
		if o.stamp == stamp {
			n = max(n, o.n+1)
		}
	}
	var aside string
	for {
		aside = rotatedName(r.name, stamp, n)
		// Anything else of that name (whatever was planted there)
		// is skipped, not replaced.
		var st unix.Stat_t
		if errors.Is(unix.Fstatat(int(r.dir.Fd()), aside, &st, unix.AT_SYMLINK_NOFOLLOW), unix.ENOENT) {
			break
		}
		n++
	}
	// rename(2) acts on directory entries: a link at the log's name is
	// moved, not followed.
	if err := unix.Renameat(int(r.dir.Fd()), r.name, int(r.dir.Fd()), aside); err != nil {
		return fmt.Errorf("log file %s: rotating: %w", r.path, err)
	}
	r.prune(append(list, &rotated{aside, stamp, n}))
	return nil
}

// prune removes the oldest rotated files of list (sorted oldest first,
// the one just made last, which stays the newest even after the clock
// stepped back) until keep are left.
func (r *rotating) prune(list []*rotated) {
	for _, o := range list[:max(len(list)-r.keep, 0)] {
		// unlinkat removes the entry itself, link or not.
		_ = unix.Unlinkat(int(r.dir.Fd()), o.name, 0)
	}
}

func (r *rotating) close() error {
	var err error
	if r.f != nil {
		err = r.f.Close()
		r.f = nil
	}
	if r.dir != nil {
		_ = r.dir.Close()
		r.dir = nil
	}
	return err
}
