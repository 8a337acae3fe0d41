package vmtest_test

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/vmtest"
)

// TestReadFootprint samples this test process and a child that sleeps: the
// figures must be plausible and the switch count must grow when the
// process blocks.
func TestReadFootprint(t *testing.T) {
	before, err := vmtest.ReadFootprint(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSSKiB <= 0 || before.HWMKiB < before.RSSKiB || before.Threads < 1 || before.Switches <= 0 {
		t.Fatalf("own footprint %+v: want RSS > 0, peak ≥ RSS, threads and switches counted", before)
	}
	for range 5 {
		time.Sleep(2 * time.Millisecond) // each sleep blocks a thread: a voluntary switch
	}
	after, err := vmtest.ReadFootprint(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Switches <= before.Switches {
		t.Errorf("switches %d → %d after sleeping: the count does not move", before.Switches, after.Switches)
	}

	// A child process is sampled the same way, and a finished one is an error.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep(1) for the child process: %v", err)
	}
	cmd := exec.Command(sleep, "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child, err := vmtest.ReadFootprint(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil || child.RSSKiB <= 0 || child.Threads != 1 {
		t.Errorf("sleep(1) footprint %+v, %v: want RSS > 0 and one thread", child, err)
	}
	if _, err := vmtest.ReadFootprint(cmd.Process.Pid); err == nil {
		t.Errorf("footprint of the finished pid %d: no error", cmd.Process.Pid)
	}
}
