package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/tsp"
)

// TestMeasureOrder: answering brokers of the right family by RTT, then
// errors and silence, then the wrong family (spec §7.1 penalties); silent
// probes are cut short once a broker has answered.
func TestMeasureOrder(t *testing.T) {
	type res struct {
		rtt   time.Duration
		right bool
		err   error
	}
	results := map[string]res{
		"far":      {30 * time.Millisecond, true, nil},
		"near":     {2 * time.Millisecond, true, nil},
		"v6only":   {1 * time.Millisecond, false, nil},
		"refused":  {0, true, errors.New("connection refused")},
		"noname":   {0, true, &resolveError{errors.New("no such host")}},
		"silent":   {},
		"silent6":  {},
		"nearest+": {2*time.Millisecond + 100*time.Microsecond, true, nil},
	}
	probe := func(ctx context.Context, s string) (time.Duration, bool, error) {
		r := results[s]
		if s == "silent" || s == "silent6" {
			<-ctx.Done()
			return 0, s == "silent", tsp.ErrNoReply
		}
		// The RTT is what the probe reports, not how long it takes: an
		// answer delayed by a busy machine would be cut short as silent.
		return r.rtt, r.right, r.err
	}
	servers := []string{"silent", "far", "refused", "v6only", "near", "noname", "silent6", "nearest+"}
	start := time.Now()
	ds := Measure(context.Background(), servers, probe, 50*time.Millisecond)
	// Silent probes end only when Measure gives up on them.
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Measure waited %v for silent brokers after others answered", el)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Server)
	}
	want := "near nearest+ far silent refused noname v6only silent6"
	// silent, refused and noname all score 20000: their order among
	// themselves is the input order.
	if strings.Join(got, " ") != want {
		t.Fatalf("order %v\nwant  %s\n%s", got, want, formatDistances(ds))
	}
	if ds[len(ds)-1].Score != penaltyNoAnswer+penaltyWrongFamily || ds[len(ds)-2].Score != 1+penaltyWrongFamily {
		t.Fatalf("wrong-family scores: %s", formatDistances(ds))
	}
}

// TestEchoRealSocket measures a live UDP echo responder and a closed
// port with the real prober.
func TestEchoRealSocket(t *testing.T) {
	_, live := startBroker(t, brokerDefaults(), "127.0.0.1:0")
	p := Echo{Tries: 2, Timeout: 300 * time.Millisecond}.Probe
	rtt, right, err := p(context.Background(), live)
	if err != nil || !right || rtt < 0 || rtt > 300*time.Millisecond { // RUDP times in whole ms: loopback gives 0
		t.Fatalf("live broker: rtt %v right %v err %v", rtt, right, err)
	}
	if _, _, err := p(context.Background(), "[::1]:1"); err == nil {
		t.Fatal("closed port measured as answering")
	}
}

// TestBrokerListFiles: the broker list and last-server files as the spec
// lays them out (§7.2, §7.3), with gogoc's origin line: a broker list is a
// redirect's, read back as one whatever the file says, from a broker on
// this host only when the file says so; a bad entry makes the whole file
// ignored, naming the line.
func TestBrokerListFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "list")
	far, local := tsp.Origin{Redirect: true}, tsp.Origin{Redirect: true, SameHost: true}
	if err := writeBrokerList(p, []string{"[2001:db8::1]", "broker.example.net", "192.0.2.1"}, local); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	if string(raw) != "# gogoc: named by a broker's redirect; same_host=yes\n2001:db8::1\nbroker.example.net\n192.0.2.1\n" {
		t.Fatalf("file %q: origin line, then IPv6 without brackets, one per line", raw)
	}
	got, from, err := readBrokerList(p)
	if err != nil || strings.Join(got, ",") != "[2001:db8::1],broker.example.net,192.0.2.1" || from != local {
		t.Fatalf("read back %v %+v %v", got, from, err)
	}
	for name, tc := range map[string]struct {
		body string
		from tsp.Origin
	}{
		"previous release":    {"192.0.2.1\n", far},
		"says far":            {"# gogoc: named by a broker's redirect; same_host=no\n192.0.2.1\n", far},
		"says configured":     {"# gogoc: the configured server\n192.0.2.1\n", far},
		"origin line not 1st": {"192.0.2.1\n# gogoc: named by a broker's redirect; same_host=yes\n", far},
	} {
		_ = os.WriteFile(p, []byte(tc.body), 0o644)
		if got, from, err := readBrokerList(p); err != nil || len(got) != 1 || from != tc.from {
			t.Errorf("%s: %v, origin %+v, %v; want one entry of origin %+v", name, got, from, err, tc.from)
		}
	}
	_ = os.WriteFile(p, []byte("192.0.2.1\nbroker..example\n"), 0o644)
	if got, _, err := readBrokerList(p); got != nil || err == nil || !strings.Contains(err.Error(), p+":2:") {
		t.Fatalf("a list with a bad entry: %v, %v; want it ignored, naming line 2", got, err)
	}
	long := strings.Repeat("192.0.2.1\n", maxListEntries+1)
	_ = os.WriteFile(p, []byte(long), 0o644)
	if got, _, err := readBrokerList(p); err == nil || got != nil {
		t.Fatalf("a list of %d entries was used: %v", maxListEntries+1, got)
	}
	if got, _, err := readBrokerList(filepath.Join(dir, "none")); got != nil || err != nil {
		t.Fatalf("missing file: %v %v", got, err)
	}

	lp := filepath.Join(dir, "last")
	if err := writeLastServer(lp, "[2001:db8::20]", far); err != nil {
		t.Fatal(err)
	}
	if s, from, marked, err := readLastServer(lp); s != "[2001:db8::20]" || from != far || !marked || err != nil {
		t.Fatalf("last server %q %+v %v %v", s, from, marked, err)
	}
	if err := writeLastServer(lp, "broker.example.net", tsp.Origin{}); err != nil {
		t.Fatal(err)
	}
	if s, from, marked, _ := readLastServer(lp); s != "broker.example.net" || from.Redirect || !marked {
		t.Fatalf("configured last server %q %+v %v", s, from, marked)
	}
	_ = os.WriteFile(lp, []byte("#c\r\n\n\rx\nbroker.example.net\r\n"), 0o644)
	if s, _, marked, _ := readLastServer(lp); s != "broker.example.net" || marked {
		t.Fatalf("last server %q (marked %v): lines starting with #, CR or LF are skipped; no origin line", s, marked)
	}
	if resolvePath("/var/run/gogoc", "tsp-last-server.txt") != "/var/run/gogoc/tsp-last-server.txt" ||
		resolvePath("/x", "/etc/gogoc/last") != "/etc/gogoc/last" {
		t.Fatal("resolvePath")
	}
}
