package logx

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLevelsPerDestination(t *testing.T) {
	var out, errw bytes.Buffer
	l, err := New(Options{Stdout: &out, StdoutLevel: 1, Stderr: &errw, StderrLevel: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Debug("dbg", "k", 1)
	l.Info("inf state up", "from", "negotiating")
	l.Warn("wrn")
	l.Error("err")
	if got := strings.Count(errw.String(), "\n"); got != 4 {
		t.Errorf("stderr at level 3 got %d lines, want 4:\n%s", got, errw.String())
	}
	if got := out.String(); strings.Contains(got, "dbg") || strings.Contains(got, "inf") || !strings.Contains(got, " W gogoc: wrn") || !strings.Contains(got, " E gogoc: err") {
		t.Errorf("stdout at level 1:\n%s", got)
	}
	if !strings.Contains(errw.String(), " I gogoc: inf state up from=negotiating\n") {
		t.Errorf("line format:\n%s", errw.String())
	}
}

func TestSecretsMasked(t *testing.T) {
	var errw bytes.Buffer
	l, err := New(Options{Stderr: &errw, StderrLevel: 3, Secrets: []string{"hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("sent hunter2 to the broker", "blob", "xhunter2x")
	if strings.Contains(errw.String(), "hunter2") || !strings.Contains(errw.String(), "********") {
		t.Fatalf("secret not masked: %s", errw.String())
	}
}

// TestQuotedSecretMasked: the text handler escapes a value with quotes
// or backslashes; the escaped spelling must be masked as well.
func TestQuotedSecretMasked(t *testing.T) {
	var errw bytes.Buffer
	const pw = `pa"ss\wd`
	l, err := New(Options{Stderr: &errw, StderrLevel: 3, Secrets: []string{pw}})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("auth", "err", errors.New("bad password "+pw))
	out := errw.String()
	if q := strconv.Quote(pw); strings.Contains(out, pw) || strings.Contains(out, q[1:len(q)-1]) || !strings.Contains(out, `err="bad password ********"`) {
		t.Fatalf("quoted secret not masked: %s", out)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gogoc.log")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := New(Options{FileLevel: 2, FilePath: path, Rotate: true, RotateSizeKiB: 1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 100)
	for range 15 { // ≈ 1.9 KiB: one rotation
		l.Info(line)
	}
	l.Close()
	// 15 lines of ≈130 bytes: two rotations in the same second, the
	// second one must not overwrite the first.
	var total int64
	for _, name := range []string{"gogoc.log", "gogoc.20260102030405.log", "gogoc.20260102030405-1.log"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("rotated file: %v", err)
		}
		if st.Size() >= 1024 {
			t.Errorf("%s has %d bytes, over the 1 KiB limit", name, st.Size())
		}
		total += st.Size()
	}
	if total < 15*100 {
		t.Fatalf("the files hold %d bytes; lines were lost", total)
	}
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{{"log", 0, "log.20260102030405"}, {"log", 2, "log.20260102030405-2"}, {"a.b.log", 1, "a.b.20260102030405-1.log"}, {".log", 0, ".log.20260102030405"}} {
		if got := rotatedName(tc.name, now.Format(stampLayout), tc.n); got != tc.want {
			t.Errorf("rotatedName(%q, %d) = %q, want %q", tc.name, tc.n, got, tc.want)
		}
	}
	// With deletion the old content goes away.
	path2 := filepath.Join(dir, "d.log")
	l, _ = New(Options{FileLevel: 2, FilePath: path2, Rotate: true, RotateSizeKiB: 1, RotateDelete: true, Now: func() time.Time { return now }})
	for range 15 {
		l.Info(line)
	}
	l.Close()
	ents, _ := filepath.Glob(filepath.Join(dir, "d.*"))
	if len(ents) != 1 {
		t.Fatalf("with log_rotation_delete: files %v, want only d.log", ents)
	}
}

func TestSyslogFacility(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Skipf("unixgram: %v", err)
	}
	defer pc.Close()
	l, err := New(Options{SyslogLevel: 2, SyslogFacility: "local3", SyslogAddr: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Warn("tunnel lost", "reason", "keepalive")
	l.Debug("not sent")
	buf := make([]byte, 512)
	_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	// LOCAL3 = 19, warning = 4: 19*8+4 = 156.
	if !strings.HasPrefix(got, "<156>") || !strings.Contains(got, " gogoc[") || !strings.HasSuffix(got, "]: tunnel lost reason=keepalive") {
		t.Fatalf("syslog line %q", got)
	}
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Fatalf("debug line reached syslog at level 2: %q", buf[:n])
	}
	if _, err := New(Options{SyslogLevel: 1, SyslogFacility: "KERN"}); err == nil {
		t.Fatal("facility KERN accepted")
	}
}

// TestReconfigure: new levels apply to loggers derived before the change.
func TestReconfigure(t *testing.T) {
	var errw bytes.Buffer
	l, err := New(Options{Stderr: &errw, StderrLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	derived := l.With("component", "daemon")
	derived.Info("hidden")
	if err := l.Reconfigure(Options{Stderr: &errw, StderrLevel: 2}); err != nil {
		t.Fatal(err)
	}
	derived.Info("shown")
	if strings.Contains(errw.String(), "hidden") || !strings.Contains(errw.String(), "shown component=daemon") {
		t.Fatalf("after Reconfigure:\n%s", errw.String())
	}
	if err := l.Reconfigure(Options{SyslogLevel: 1, SyslogFacility: "KERN"}); err == nil {
		t.Fatal("bad facility accepted")
	}
	derived.Info("still shown")
	if !strings.Contains(errw.String(), "still shown") {
		t.Fatal("a failed Reconfigure changed the destinations")
	}
}
