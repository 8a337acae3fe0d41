package logx

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type stringer struct{}

func (stringer) String() string { return "from String" }

// The attribute spelling must stay log/slog's text handler's, which
// operators and the tests of other packages read.
func TestAttrsMatchTextHandler(t *testing.T) {
	at := time.Date(2026, 11, 23, 13, 4, 5, 678_000_000, time.UTC)
	cases := []struct {
		name string
		with []any
		args []any
	}{
		{"plain", nil, []any{"broker", "192.0.2.1:3653", "n", 42, "u", uint64(7), "ok", true, "f", 1.25}},
		{"quoting", nil, []any{"empty", "", "space", "a b", "quote", `say "hi"`, "eq", "a=b", "ctl", "tab\there", "nl", "x\ny", "uni", "grüße", "bad", "\xff"}},
		{"typed", nil, []any{"d", 1500 * time.Millisecond, "t", at, "addr", netip.MustParseAddr("2001:db8::1"),
			"pfx", netip.MustParsePrefix("2001:db8::/56"), "err", errors.New("no route to host"), "bytes", []byte("a\x00b"),
			"nil", nil, "slice", []int{1, 2}, "v", stringer{}, "ptr", &stringer{}}},
		{"ints", nil, []any{"i32", int32(-3), "u16", uint16(8), "u32", uint32(9), "u", uint(10), "i64", int64(-1 << 40), "f", 3e21}},
		{"with", []any{"tunnel", "gogoc", "mode", "v6udpv4"}, []any{"state", "up"}},
		{"badkeys", []any{"dangling"}, []any{42, "k", "v", "last"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			ref := slog.New(slog.NewTextHandler(&want, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
				if len(g) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
					return slog.Attr{}
				}
				return a
			}}))
			var got bytes.Buffer
			l, err := New(Options{Stderr: &got, StderrLevel: 3})
			if err != nil {
				t.Fatal(err)
			}
			ours := l
			if tc.with != nil {
				ref, ours = ref.With(tc.with...), ours.With(tc.with...)
			}
			ref.Info("m", tc.args...)
			ours.Info("m", tc.args...)
			line := strings.TrimSuffix(got.String(), "\n")
			_, attrs, ok := strings.Cut(line, " I gogoc: m ")
			if !ok {
				t.Fatalf("line %q: no level, tag and message", line)
			}
			if w := strings.TrimSuffix(want.String(), "\n"); attrs != w {
				t.Errorf("attributes\n got %s\nwant %s", attrs, w)
			}
		})
	}
}
