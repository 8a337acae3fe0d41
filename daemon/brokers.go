package daemon

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jsklein/gogoc/internal/atomicfile"
	"github.com/jsklein/gogoc/tsp"
)

// Distance penalties of the old client (spec §7.1), in milliseconds.
const (
	penaltyWrongFamily = 30000
	penaltyNoAnswer    = 20000
	maxListEntries     = 50 // a longer broker list file is ignored (spec §7.3)
)

// Distance is one broker's measured distance.
type Distance struct {
	Server      string
	RTT         time.Duration // of the answered echo; 0 without one
	Score       int           // RTT in ms plus penalties; lower is better
	WrongFamily bool
	Err         error // no answer, resolve or socket error
}

// Prober measures one broker with the TSP echo. It returns the round trip
// of the answered probe and whether the broker's address is of the wanted
// family.
type Prober func(ctx context.Context, server string) (rtt time.Duration, rightFamily bool, err error)

// Echo is the production Prober (its Probe method): it resolves the
// server, preferring the wanted family (IPv6 for v4v6, else IPv4), and
// sends "ECHO REQUEST" over a fresh RUDP socket, Tries times, each waiting
// Timeout. The address probed must first pass From's check: a redirect
// target's name may lead anywhere, and a probe is a packet sent there.
type Echo struct {
	V6       bool         // IPv6 is the wanted family (v4v6)
	From     tsp.Origin   // who named the servers probed
	Resolver tsp.Resolver // nil: net.DefaultResolver
	Tries    int
	Timeout  time.Duration
}

// Probe implements Prober.
func (e Echo) Probe(ctx context.Context, server string) (time.Duration, bool, error) {
	host, port, err := tsp.ParseServer(server)
	if err != nil {
		return 0, false, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		var r tsp.Resolver = net.DefaultResolver
		if e.Resolver != nil {
			r = e.Resolver
		}
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return 0, false, &resolveError{fmt.Errorf("resolve %s: %w", host, err)}
		}
	}
	// The first allowed address of the wanted family, else the first
	// allowed one (flagged wrong family); none allowed: no probe at all.
	var addr netip.Addr
	var refused error
	right := false
	for _, a := range addrs {
		a = a.Unmap()
		if err := e.From.Check(server, a); err != nil {
			refused = cmp.Or(refused, err)
			continue
		}
		if a.Is6() == e.V6 {
			addr, right = a, true
			break
		}
		if !addr.IsValid() {
			addr = a
		}
	}
	if !addr.IsValid() {
		return 0, false, refused
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		return 0, right, err
	}
	defer conn.Close()
	rt := tsp.NewRUDP(conn, tsp.RUDPConfig{})
	rtt, _, err := rt.Echo(ctx, e.Tries, e.Timeout)
	// A non-200 reply keeps its distance, as in the old client.
	return rtt, right, err
}

type resolveError struct{ err error }

func (e *resolveError) Error() string { return e.err.Error() }
func (e *resolveError) Unwrap() error { return e.err }

// Measure probes every server concurrently and returns them best first:
// answering brokers of the right family in RTT order, then those that gave
// no answer or an error, then wrong-family ones (spec §7.1). Probing stops
// early once some broker answered and the others stayed silent for as
// long again (at least grace): a late answer could not beat it, and the old
// client's up to 30 s of waiting would delay the tunnel.
func Measure(ctx context.Context, servers []string, probe Prober, grace time.Duration) []Distance {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i     int
		rtt   time.Duration
		right bool
		err   error
	}
	out := make([]Distance, len(servers))
	done := make([]bool, len(servers))
	results := make(chan result, len(servers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range servers {
		out[i] = Distance{Server: s}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtt, right, err := probe(ctx, s)
			results <- result{i, rtt, right, err}
		}()
	}
	var stopAt <-chan time.Time
	for pending := len(servers); pending > 0; {
		var r result
		select {
		case r = <-results:
		case <-stopAt:
			cancel()
			stopAt = nil
			continue
		}
		pending--
		done[r.i] = true
		d := &out[r.i]
		d.RTT, d.WrongFamily, d.Err = r.rtt, !r.right, r.err
		if r.err == nil && stopAt == nil && pending > 0 {
			stopAt = time.After(max(time.Since(start), grace))
		}
	}
	wg.Wait()
	for i := range out {
		d := &out[i]
		var re *resolveError
		switch {
		case errors.As(d.Err, &re):
			d.Score = penaltyNoAnswer
		case d.Err != nil:
			d.Score = int(d.RTT/time.Millisecond) + penaltyNoAnswer
		default:
			d.Score = int(d.RTT / time.Millisecond)
		}
		if d.WrongFamily && !errors.As(d.Err, &re) {
			d.Score += penaltyWrongFamily
		}
	}
	// Sub-millisecond RTTs tie on Score: break ties on the RTT itself, then
	// on the list order. Sorting indices reuses the []int sort the binary
	// has anyway instead of linking a stable sort of Distance.
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := out[i], out[j]
		switch {
		case a.Score != b.Score:
			return a.Score - b.Score
		case a.RTT != b.RTT:
			return int(a.RTT - b.RTT)
		}
		return i - j
	})
	sorted := make([]Distance, len(out))
	for k, i := range order {
		sorted[k] = out[i]
	}
	return sorted
}

// resolvePath puts a relative file name in dir.
func resolvePath(dir, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// The origin line says who named the brokers of a file: the first line of
// a broker list, the line before the server in the last-server file. The
// readers skip any other line that starts with '#' (the old client's broker
// list allowed no comments; a server string never starts with '#').
const (
	originConfigured = "# gogoc: the configured server"
	originRedirect   = "# gogoc: named by a broker's redirect; same_host="
)

func originLine(o tsp.Origin) string {
	switch {
	case !o.Redirect:
		return originConfigured
	case o.SameHost:
		return originRedirect + "yes"
	}
	return originRedirect + "no"
}

// parseOriginLine reads an origin line; ok is false for any other line.
func parseOriginLine(line string) (o tsp.Origin, ok bool) {
	switch {
	case line == originConfigured:
		return tsp.Origin{}, true
	case strings.HasPrefix(line, originRedirect):
		return tsp.Origin{Redirect: true, SameHost: line[len(originRedirect):] == "yes"}, true
	}
	return tsp.Origin{}, false
}

// writeBrokerList writes the ordered list of a redirect, one per line,
// IPv6 literals without brackets (spec §7.3), after the origin line.
func writeBrokerList(path string, servers []string, from tsp.Origin) error {
	var b bytes.Buffer
	b.WriteString(originLine(from) + "\n")
	for _, s := range servers {
		b.WriteString(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		b.WriteByte('\n')
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// readBrokerList reads a broker list file. Its entries came from a
// redirect, whatever the file says: from is a redirect's origin, from a
// broker on this host only when the origin line says so (a file of the
// previous release has none: a far broker's). Missing file: nil. More than
// 50 entries or an entry that is no server string: the whole file is
// ignored, with an error naming the line. Unlike the old client, IPv6
// literals are bracketed so they parse as servers (spec §14).
func readBrokerList(path string) (list []string, from tsp.Origin, err error) {
	from = tsp.Origin{Redirect: true}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, from, nil
	}
	if err != nil {
		return nil, from, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r\n")
		if line == "" {
			continue
		}
		if line[0] == '#' {
			if o, ok := parseOriginLine(line); ok && n == 1 {
				from.SameHost = o.SameHost
			}
			continue
		}
		if a, err := netip.ParseAddr(line); err == nil && a.Is6() {
			line = "[" + line + "]"
		}
		if _, _, err := tsp.ParseServer(line); err != nil {
			return nil, from, fmt.Errorf("broker list %s:%d: %w: file ignored", path, n, err)
		}
		list = append(list, line)
	}
	if err := sc.Err(); err != nil {
		return nil, from, fmt.Errorf("broker list %s: %w", path, err)
	}
	if len(list) > maxListEntries {
		return nil, from, fmt.Errorf("broker list %s: %d entries, more than %d: ignored", path, len(list), maxListEntries)
	}
	return list, from, nil
}

// writeLastServer records the broker of the last successful negotiation,
// after its origin line.
func writeLastServer(path, server string, from tsp.Origin) error {
	return atomicfile.Write(path, []byte(originLine(from)+"\n"+server+"\n"), 0o644)
}

// readLastServer returns the first line that does not start with '#', CR
// or LF, without its line end (spec §7.2), and its origin when an origin
// line came before it (marked). A missing file or no such line gives "".
func readLastServer(path string) (server string, from tsp.Origin, marked bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", tsp.Origin{}, false, nil
	}
	if err != nil {
		return "", tsp.Origin{}, false, err
	}
	for line := range strings.Lines(string(raw)) {
		if line == "" || line[0] == '\r' || line[0] == '\n' {
			continue
		}
		if line[0] == '#' {
			if o, ok := parseOriginLine(strings.TrimRight(line, "\r\n")); ok {
				from, marked = o, true
			}
			continue
		}
		return strings.TrimRight(line, "\r\n"), from, marked, nil
	}
	return "", tsp.Origin{}, false, nil
}

func formatDistances(ds []Distance) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Server + "=" + strconv.Itoa(d.Score))
	}
	return b.String()
}
