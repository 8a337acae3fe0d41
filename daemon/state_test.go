package daemon

import (
	"github.com/jsklein/gogoc/tsp"

	"os"
	"path/filepath"
	"testing"

	"github.com/jsklein/gogoc/internal/atomicfile/atomictest"
)

// TestStateFilesDurable: the status, last-server and broker-list files are
// written durably: temporary file (O_EXCL), fsync, rename, directory
// fsync (strace of a helper process).
func TestStateFilesDurable(t *testing.T) {
	for _, kind := range []string{"status", "last-server", "broker-list"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), kind)
			atomictest.RequireDurable(t, "TestHelperStateFile", []string{"GDM_STATE_KIND=" + kind, "GDM_STATE_PATH=" + path}, path)
		})
	}
}

// TestHelperStateFile writes the file TestStateFilesDurable traces.
func TestHelperStateFile(t *testing.T) {
	path := os.Getenv("GDM_STATE_PATH")
	var err error
	switch os.Getenv("GDM_STATE_KIND") {
	case "":
		return
	case "status":
		err = WriteStatus(path, &Status{State: StateUp})
	case "last-server":
		err = writeLastServer(path, "broker.example.net", tsp.Origin{})
	case "broker-list":
		err = writeBrokerList(path, []string{"a.example.net", "[2001:db8::1]"}, tsp.Origin{Redirect: true})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatusReplacesSymlink: a symlink planted at the status file's path
// is replaced, its target left alone.
func TestStatusReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim, path := filepath.Join(dir, "victim"), filepath.Join(dir, "status.json")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(path, &Status{State: StateIdle}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the symlink's target now holds %q", b)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("status path is %v (%v), want a regular file", fi.Mode(), err)
	}
}
