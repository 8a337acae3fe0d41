package logx

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stepClock returns a clock that moves one second per call, so that every
// rotation gets its own stamp.
func stepClock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// rname is the rotated name of a log file at t.
func rname(name string, t time.Time, n int) string {
	return rotatedName(name, t.Format(stampLayout), n)
}

// rotatedFiles lists the rotated files of gogoc.log in dir, oldest first.
func rotatedFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &rotating{name: "gogoc.log"}
	type entry struct {
		name, stamp string
		n           int
	}
	var list []entry
	for _, e := range ents {
		if s, n, ok := r.rotatedStamp(e.Name()); ok {
			list = append(list, entry{e.Name(), s, n})
		}
	}
	slices.SortFunc(list, func(a, b entry) int {
		if a.stamp != b.stamp {
			return strings.Compare(a.stamp, b.stamp)
		}
		return a.n - b.n
	})
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.name
	}
	return names
}

// TestRotationPrunes: 4,000 lines at 1 KiB rotation made 309 rotated files,
// all kept in RAM. By default three are kept, the newest.
func TestRotationPrunes(t *testing.T) {
	dir := t.TempDir()
	clock := stepClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var last time.Time
	l, err := New(Options{FileLevel: 2, FilePath: filepath.Join(dir, "gogoc.log"), Rotate: true, RotateSizeKiB: 1,
		Now: func() time.Time { last = clock(); return last }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4000 {
		l.Info("line", "n", i)
	}
	l.Close()
	got := rotatedFiles(t, dir)
	if len(got) != 3 {
		t.Fatalf("%d rotated files kept, want 3 (default): %v", len(got), got)
	}
	// The newest three: the last one was made within the last lines.
	newest := rname("gogoc.log", last, 0)
	if got[2] > newest || got[2] < rname("gogoc.log", last.Add(-60*time.Second), 0) || got[0] >= got[1] || got[1] >= got[2] {
		t.Errorf("kept %v; the newest rotation is near %s", got, newest)
	}
}

// TestRotationKeep: RotateKeep (log_rotation_keep) sets the number, a
// restart with a smaller one prunes at once, files that only look alike
// are left alone, and a second rotation within one second counts too.
func TestRotationKeep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gogoc.log")
	foreign := []string{"gogoc.notes.log", "gogoc.2026.log", "gogoc.20260102030405x.log", "gogoc.20260102030405-.log",
		"other.20260102030405.log", "gogoc.20260102030405.log.gz"}
	for _, f := range foreign {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := New(Options{FileLevel: 2, FilePath: path, Rotate: true, RotateSizeKiB: 1, RotateKeep: 5,
		Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		l.Info(strings.Repeat("x", 100))
	}
	l.Close()
	got := rotatedFiles(t, dir)
	// All within one second: -1, -2, ... The newest are the highest.
	// 200 lines of 130 bytes in 1 KiB files: 28 rotations in one second,
	// gogoc.20260102030405.log, then -1 to -27.
	want := []string{rname("gogoc.log", fixed, 23), rname("gogoc.log", fixed, 24), rname("gogoc.log", fixed, 25),
		rname("gogoc.log", fixed, 26), rname("gogoc.log", fixed, 27)}
	if !slices.Equal(got, want) {
		t.Fatalf("kept %v, want the 5 newest of one second %v", got, want)
	}

	l, err = New(Options{FileLevel: 2, FilePath: path, Rotate: true, RotateSizeKiB: 1, RotateKeep: 1,
		Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := rotatedFiles(t, dir); len(got) != 1 {
		t.Fatalf("after a restart with keep 1: %v", got)
	}
	for _, f := range foreign {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != "keep me" {
			t.Errorf("%s touched by pruning: %q %v", f, b, err)
		}
	}
}

// TestRotationClockStepsBack: a router without a clock boots in the past
// and NTP steps the time later (or the other way round). The file just
// rotated is never the one pruned.
func TestRotationClockStepsBack(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	l, err := New(Options{FileLevel: 2, FilePath: filepath.Join(dir, "gogoc.log"), Rotate: true, RotateSizeKiB: 1, RotateKeep: 2, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("y", 300)
	for range 20 {
		l.Info(line)
	}
	now = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 4 { // one more rotation
		l.Info(line)
	}
	l.Close()
	got := rotatedFiles(t, dir)
	if len(got) != 2 || !strings.HasPrefix(got[0], "gogoc.2020") {
		t.Fatalf("kept %v: the rotation after the clock step must survive", got)
	}
}

// TestLogFileNotFollowed: the log lives in RAM other programs write to. A
// symbolic link, a FIFO or a hard link planted at its name must not make
// gogoc append to, truncate or block on another file; nor may a link
// planted at a rotated file's name redirect the rotation.
func TestLogFileNotFollowed(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "shadow")
	const content = "root:secret-hash:0:0\n"
	reset := func() {
		if err := os.WriteFile(target, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	untouched := func(what string) {
		t.Helper()
		if b, err := os.ReadFile(target); err != nil || string(b) != content {
			t.Errorf("%s: the file outside was changed: %q %v", what, b, err)
		}
	}

	t.Run("symlink", func(t *testing.T) {
		reset()
		dir := t.TempDir()
		path := filepath.Join(dir, "gogoc.log")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		l, err := New(Options{FileLevel: 2, FilePath: path})
		if err == nil {
			l.Info("written through the link")
			l.Close()
			t.Error("a symlinked log file was opened")
		} else if !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("error %q does not say why", err)
		}
		untouched("symlink")
	})

	t.Run("hard link", func(t *testing.T) {
		reset()
		dir := filepath.Join(outside, "logs") // same file system as target
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "gogoc.log")
		if err := os.Link(target, path); err != nil {
			t.Skipf("hard link: %v", err)
		}
		l, err := New(Options{FileLevel: 2, FilePath: path})
		if err == nil {
			l.Info("written through the hard link")
			l.Close()
			t.Error("a hard-linked log file was opened")
		}
		untouched("hard link")
	})

	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "gogoc.log")
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			l, err := New(Options{FileLevel: 2, FilePath: path})
			if err == nil {
				l.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Error("a FIFO was opened as the log file")
			}
		case <-time.After(10 * time.Second):
			// Unblock the open so the goroutine ends.
			if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				defer f.Close()
			}
			<-done
			t.Error("opening a FIFO planted as the log file blocked")
		}
	})

	t.Run("links planted during rotation", func(t *testing.T) {
		reset()
		dir := t.TempDir()
		path := filepath.Join(dir, "gogoc.log")
		fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		l, err := New(Options{FileLevel: 2, FilePath: path, Rotate: true, RotateSizeKiB: 1, RotateKeep: 10,
			Now: func() time.Time { return fixed }})
		if err != nil {
			t.Fatal(err)
		}
		// The name the next rotation would take, and the log's own name
		// (swapped while the file is open), both point outside.
		if err := os.Symlink(target, filepath.Join(dir, rname("gogoc.log", fixed, 0))); err != nil {
			t.Fatal(err)
		}
		line := strings.Repeat("z", 200)
		l.Info(line)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			l.Info(line)
		}
		l.Close()
		untouched("rotation")
		st, err := os.Lstat(path)
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("after rotating, %s is %v (%v), want a plain file", path, st.Mode(), err)
		}
	})
}
