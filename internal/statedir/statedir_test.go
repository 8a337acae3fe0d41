package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/caps/captest"
)

func TestCheckRules(t *testing.T) {
	ok := func() error { return nil }
	denied := func() error { return os.ErrPermission }
	for _, c := range []struct {
		name      string
		o         owner
		euid      int
		writable  func() error
		wantError string
	}{
		{"own 0750", owner{999, 999, 0o750}, 999, ok, ""},
		{"own 0700", owner{999, 999, 0o700}, 999, ok, ""},
		{"root's, root daemon", owner{0, 0, 0o755}, 0, ok, ""},
		{"root's, group writable by root", owner{0, 0, 0o775}, 0, ok, ""},
		{"own, group writable by own group", owner{999, 999, 0o770}, 999, ok, ""},
		{"root's, not writable", owner{0, 0, 0o755}, 999, denied, "is not writable by uid 999 (owner uid 0, mode 0755)"},
		{"another user's", owner{1000, 1000, 0o700}, 999, ok, "belongs to uid 1000, not to this daemon's uid 999"},
		{"another user's, root daemon", owner{999, 999, 0o750}, 0, ok, "belongs to uid 999, not to this daemon's uid 0"},
		{"world writable", owner{999, 999, 0o777}, 999, ok, "writable by every user (mode 0777)"},
		{"sticky world writable", owner{0, 0, 0o777}, 0, ok, "writable by every user"},
		{"foreign group writable", owner{999, 100, 0o770}, 999, ok, "writable by group 100 (mode 0770)"},
	} {
		err := check("/var/run/gogoc", c.o, c.euid, 999, c.writable)
		switch {
		case c.wantError == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantError != "" && (err == nil || !strings.Contains(err.Error(), c.wantError)):
			t.Errorf("%s: %v, want %q", c.name, err, c.wantError)
		}
	}
}

func TestEnsure(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "gogoc")
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("created %v, %v; want mode 0750", fi.Mode(), err)
	}
	if err := Ensure(dir); err != nil {
		t.Fatalf("again: %v", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: %v", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(open); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Errorf("0777: %v", err)
	}
}

// TestEnsureUnprivileged: as uid 4242, a directory it owns is accepted, a
// root-owned one it cannot write to and one of another user are refused
// with the reason, and a missing one under a root-owned parent says who
// must create it.
func TestEnsureUnprivileged(t *testing.T) {
	const name = "TestEnsureUnprivileged"
	if captest.InHelper(name) {
		for _, d := range strings.Split(os.Getenv("GOGOC_CAPTEST_DIRS"), ",") {
			fmt.Printf("%s: %v\n", filepath.Base(d), Ensure(d))
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	base := t.TempDir()
	captest.Reach(t, base)
	mk := func(n string, uid int, mode os.FileMode) string {
		d := filepath.Join(base, n)
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dirs := []string{
		mk("own", 4242, 0o750),
		mk("roots", 0, 0o755),
		mk("others", 4343, 0o755),
		filepath.Join(base, "missing"),
	}
	t.Setenv("GOGOC_CAPTEST_DIRS", strings.Join(dirs, ","))
	out := captest.Run(t, name, "", "")
	for _, want := range []string{
		"own: <nil>",
		"roots: state directory " + dirs[1] + " is not writable by uid 4242 (owner uid 0, mode 0755)",
		"others: state directory " + dirs[2] + " belongs to uid 4343, not to this daemon's uid 4242",
		"missing: state directory " + dirs[3] + ": create: mkdir " + dirs[3] + ": permission denied (uid 4242 cannot create it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dirs[3]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}
