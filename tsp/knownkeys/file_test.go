package knownkeys

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jsklein/gogoc/internal/atomicfile/atomictest"
)

// TestSaveDurable: Save writes durably: temporary file (O_EXCL), fsync,
// rename, directory fsync (strace of a helper process).
func TestSaveDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gogockeys.pub")
	atomictest.RequireDurable(t, "TestHelperSave", []string{"KNOWNKEYS_SAVE=" + path}, path)
}

// TestHelperSave saves the file TestSaveDurable traces.
func TestHelperSave(t *testing.T) {
	path := os.Getenv("KNOWNKEYS_SAVE")
	if path == "" {
		return
	}
	f, err := Parse(path, []byte("# no keys yet\n"))
	if err == nil {
		err = f.Save()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSaveReplacesSymlink: a symlink planted at the known keys path is
// replaced by the file, its target left alone.
func TestSaveReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim, path := filepath.Join(dir, "victim"), filepath.Join(dir, "gogockeys.pub")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(path, []byte("# comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the symlink's target now holds %q", b)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "# comment\n" {
		t.Errorf("known keys file holds %q (%v)", b, err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("known keys path is %v (%v), want a regular file", fi.Mode(), err)
	}
}
