package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/jsonread"
)

// ReadStatus used json.Unmarshal and WriteStatus json.MarshalIndent; these
// tests keep encoding/json as the reference so that every file is read and
// written exactly as before.

func fullStatus() *Status {
	return &Status{State: StateUp, Since: "2026-01-02T03:04:05Z", PID: 4242, Updated: "2026-01-02T03:05:00Z",
		Broker: "broker.example.net", Transport: "udp", TunnelMode: "v6udpv4", DataPlane: "kernel", Interface: "gogoc",
		LocalEndpoint: "192.0.2.10:3653", RemoteEndpoint: "198.51.100.1:3653", ClientIPv4: "192.0.2.10",
		ServerIPv4: "198.51.100.1", ClientIPv6: "2001:db8::2", ServerIPv6: "2001:db8::1", Prefix: "2001:db8:1200::/56",
		LANPrefix: "2001:db8:1200::/64", Keepalive: &Keepalive{IntervalS: 30, RTTMs: 12.345678, Sent: 1 << 40, Lost: 3},
		Reconnects: math.MaxUint64, LastError: "dial udp: <nil> & \"quoted\"\n\ttab \x01 \u2028 é"}
}

func representativeStatuses() map[string]*Status {
	return map[string]*Status{
		"all fields":         fullStatus(),
		"empty":              {},
		"stopped":            {State: StateStopped, Since: "2026-01-02T03:04:05Z", PID: -1, LastError: "tsp: 300 Authentication failed (pid 7 is gone)"},
		"keepalive zero":     {State: StateUp, Keepalive: &Keepalive{}},
		"tiny rtt":           {State: StateUp, Keepalive: &Keepalive{IntervalS: 1, RTTMs: 1e-7}},
		"huge rtt":           {State: StateUp, Keepalive: &Keepalive{IntervalS: 1, RTTMs: 1e21}},
		"negative zero rtt":  {State: StateLost, Keepalive: &Keepalive{RTTMs: math.Copysign(0, -1)}},
		"whole rtt":          {State: StateUp, Keepalive: &Keepalive{RTTMs: 3}},
		"odd strings":        {State: "we\"ird\\", Broker: "<b>&amp;</b>", LastError: "\u2029\x7f\x00"},
		"only optional ones": {Prefix: "2001:db8::/48", Interface: "x"},
		"invalid utf-8":      {State: StateUp, LastError: "bad \xff\xc3 bytes"}, // written as U+FFFD
	}
}

func TestMarshalStatusMatchesEncodingJSON(t *testing.T) {
	cases := representativeStatuses()
	cases["nil"] = nil
	for name, s := range cases {
		want, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := MarshalStatus(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestMarshalStatusRefusesNonFinite: a number JSON cannot hold is an error,
// as with encoding/json, and the status file already there stays as it was.
func TestMarshalStatusRefusesNonFinite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	if err := WriteStatus(path, fullStatus()); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := json.MarshalIndent(&Status{Keepalive: &Keepalive{RTTMs: f}}, "", "  "); err == nil {
			t.Fatal("reference accepted a non-finite number")
		}
		if err := WriteStatus(path, &Status{Keepalive: &Keepalive{RTTMs: f}}); err == nil {
			t.Errorf("rtt %v written", f)
		}
		if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
			t.Errorf("rtt %v: status file now %q (%v), was %q", f, after, err, before)
		}
	}
}

// TestReadStatusRoundTrip: what WriteStatus writes, ReadStatus reads back
// unchanged, as encoding/json does.
func TestReadStatusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, s := range representativeStatuses() {
		path := filepath.Join(dir, "status.json")
		if err := WriteStatus(path, s); err != nil {
			t.Fatal(err)
		}
		got, err := ReadStatus(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw, _ := os.ReadFile(path)
		var want Status
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) || name != "invalid utf-8" && !reflect.DeepEqual(got, s) {
			t.Errorf("%s: read %+v, encoding/json read %+v, written %+v", name, got, want, s)
		}
	}
}

func TestReadStatusBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ body, words string }{
		{`{"state":"up",`, "invalid JSON"},
		{`{"pid":"12"}`, "pid: want a number"},
		{`{"keepalive":{"sent":-1}}`, "keepalive: sent"},
		{`{"keepalive":[]}`, "keepalive: want an object"},
		{`{"state":"up","Broker":7}`, "Broker: want a string, found number"},
		{`[]`, "want an object"},
		{strings.Repeat("[", 10000), "levels of nesting"},
	} {
		path := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := ReadStatus(path)
		if err == nil || s != nil || !strings.Contains(err.Error(), c.words) || !strings.Contains(err.Error(), path) {
			t.Errorf("%.40q: status %v, error %v; want one naming the file and %q", c.body, s, err, c.words)
		}
	}
}

var statusDocs = []string{
	`null`, `{}`, `{"STATE":"up","Pid":3,"keepalive":{"RTT_MS":1.5}}`, `{"keepalive":{"sent":1},"keepalive":{"lost":2}}`,
	`{"keepalive":{"sent":1},"keepalive":null}`, `{"state":null,"pid":null,"keepalive":null}`, `{"state":"up","state":null,"pid":7,"pid":null}`, `{"pid":1.0}`, `{"pid":-0}`,
	`{"reconnects":-0}`, `{"pid":99999999999}`, `{"keepalive":{"rtt_ms":1e999}}`, `{"extra":[1,{"a":null}],"state":"x"}`,
	`{"last_error":"\ud800\udc00 \ud800 \u00e9"}`, `{"ſince":"long s folds to s"}`, `[1]`, `"up"`, `{"state":1}`, `{"state":"up"} x`,
}

// FuzzJSONReadStatus: ReadStatus accepts exactly what json.Unmarshal into
// a Status accepts, and fills the same fields.
func FuzzJSONReadStatus(f *testing.F) {
	for _, d := range statusDocs {
		f.Add([]byte(d))
	}
	for _, s := range representativeStatuses() {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := parseStatus(doc)
		var want Status
		rerr := json.Unmarshal(doc, &want)
		if errors.Is(err, jsonread.ErrTooDeep) {
			return // the reference allows 10000 levels, we allow far fewer
		}
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%q: jsonread error %v, encoding/json error %v", doc, err, rerr)
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", doc, got, want)
		}
	})
}

func TestStatusDocsMatchEncodingJSON(t *testing.T) {
	for _, d := range statusDocs {
		got, err := parseStatus([]byte(d))
		var want Status
		rerr := json.Unmarshal([]byte(d), &want)
		if (err == nil) != (rerr == nil) {
			t.Errorf("%s: jsonread error %v, encoding/json error %v", d, err, rerr)
			continue
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", d, got, want)
		}
	}
}

// FuzzJSONWriteStatus: MarshalStatus gives encoding/json's bytes for any
// strings and numbers.
func FuzzJSONWriteStatus(f *testing.F) {
	f.Add("up", "broker.example.net", "", 1, 1.25, uint64(3), true)
	f.Add("", "<&>", "\xff\u2028\x00", -1, 1e-9, uint64(math.MaxUint64), false)
	f.Fuzz(func(t *testing.T, state, broker, lastErr string, pid int, rtt float64, n uint64, withKeepalive bool) {
		s := &Status{State: State(state), Since: lastErr, PID: pid, Updated: broker, Broker: broker, LANPrefix: state,
			Reconnects: n, LastError: lastErr}
		if withKeepalive {
			s.Keepalive = &Keepalive{IntervalS: pid, RTTMs: rtt, Sent: n, Lost: n / 3}
		}
		want, rerr := json.MarshalIndent(s, "", "  ")
		got, err := MarshalStatus(s)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%+v: jsonw error %v, encoding/json error %v", s, err, rerr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// ParseStamp must agree with time.Parse on everything stamp writes and
// refuse what time.Parse would read differently or not at all.
func TestParseStamp(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 23, 13, 4, 5, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 1, 30, 0, 0, time.FixedZone("CEST", 7200)),
	} {
		s := stamp(at)
		got, err := ParseStamp(s)
		want, werr := time.Parse(time.RFC3339, s)
		if err != nil || werr != nil || !got.Equal(want) || !got.Equal(at) {
			t.Errorf("ParseStamp(%q) = %v, %v; time.Parse %v, %v", s, got, err, want, werr)
		}
	}
	for _, s := range []string{"", "2026-11-23T13:04:05", "2026-11-23T13:04:05+01:00", "2026-11-23 13:04:05Z",
		"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T13:60:05Z",
		"2026-11-23T13:04:5xZ", "+026-11-23T13:04:05Z", "2026-11-23T13:04:05.5Z"} {
		if _, err := ParseStamp(s); err == nil {
			t.Errorf("ParseStamp(%q) accepted", s)
		}
	}
}
