package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// EnvGogoc names the gogoc binary the VM lane puts into the guest
// (scripts/vm-test.sh builds it as `make build` does), so that a test can
// measure the real daemon as a process of its own.
const EnvGogoc = "GOGOC_VM_GOGOC"

// EnvBroker names the tspbroker binary the VM lane puts into the guest,
// for the end-to-end tests: the guest has no Go toolchain to build one.
const EnvBroker = "GOGOC_VM_TSPBROKER"

// Footprint is what /proc says about one process at one moment.
type Footprint struct {
	RSSKiB   int // VmRSS
	HWMKiB   int // VmHWM, the peak RSS
	Threads  int
	Switches int // voluntary + involuntary context switches of all threads
}

// ReadFootprint samples /proc/<pid>. Switches sums every thread's counters
// (/proc/<pid>/task/*/status): the process's own status line counts only
// the main thread, and an idle Go program is woken on its other threads.
func ReadFootprint(pid int) (Footprint, error) {
	var f Footprint
	top, err := procStatus(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return f, err
	}
	f.RSSKiB, f.HWMKiB, f.Threads = top["VmRSS"], top["VmHWM"], top["Threads"]
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	if err != nil || len(tasks) == 0 {
		return f, fmt.Errorf("threads of %d: none found (%v)", pid, err)
	}
	for _, p := range tasks {
		st, err := procStatus(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue // the thread ended between Glob and here
			}
			return f, err
		}
		f.Switches += st["voluntary_ctxt_switches"] + st["nonvoluntary_ctxt_switches"]
	}
	return f, nil
}

// procStatus reads the numeric fields of a /proc status file ("VmRSS:
// 1234 kB" gives 1234); other fields are left out.
func procStatus(path string) (map[string]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.Atoi(string(fields[0])); err == nil {
			m[string(key)] = n
		}
	}
	if _, ok := m["Threads"]; !ok {
		return nil, fmt.Errorf("%s: no Threads line, not a process status file", path)
	}
	return m, nil
}
