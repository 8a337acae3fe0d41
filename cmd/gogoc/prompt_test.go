package main

import (
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// promptKey is any key: the prompt only shows its fingerprint.
var promptKey = knownkeys.Key{P: big.NewInt(23), Q: big.NewInt(11), G: big.NewInt(4), Y: big.NewInt(9)}

func TestLinePrompt(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    bool
		err     bool
		prompts int
	}{
		{"y\n", true, false, 1},
		{"maybe\n\nYes\n", true, false, 3},
		{"N\n", false, false, 1},
		{"what\n", false, true, 2},
		{"", false, true, 1},
	} {
		var out strings.Builder
		ok, err := linePrompt(strings.NewReader(tt.in), &out)("broker.test", promptKey)
		if ok != tt.want || (err != nil) != tt.err || strings.Count(out.String(), "(Y/N)") != tt.prompts {
			t.Errorf("%q: %v %v after %d prompts", tt.in, ok, err, strings.Count(out.String(), "(Y/N)"))
		}
		if !strings.Contains(out.String(), promptKey.Fingerprint()) {
			t.Errorf("prompt does not show the fingerprint: %q", out.String())
		}
	}
}

func TestTerminalPromptOnlyOnATerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, f := range []*os.File{null, r, nil} {
		if terminalPrompt(f, io.Discard) != nil {
			t.Errorf("%v: prompt offered on a non-terminal", f)
		}
	}
	// A pseudo-terminal does get one.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	pts, err := os.OpenFile(filepath.Join("/dev/pts", strconv.Itoa(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	defer pts.Close()
	if terminalPrompt(pts, io.Discard) == nil {
		t.Error("no prompt on a terminal")
	}
}
