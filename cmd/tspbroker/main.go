// Command tspbroker runs the project's test TSP broker (internal/testbroker)
// on UDP and TCP until SIGINT or SIGTERM. It is meant for `make demo` and
// manual testing against gogoc, not for production.
//
//	tspbroker -user alice:secret -v
//	tspbroker -udp 0.0.0.0:3653 -tcp '' -server-v4 192.0.2.1 -auth ANONYMOUS
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// run is main without the process: it returns the exit code once ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tspbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		udpAddr   = fs.String("udp", "127.0.0.1:3653", "UDP listen address (empty: no UDP)")
		tcpAddr   = fs.String("tcp", "127.0.0.1:3653", "TCP listen address (empty: no TCP)")
		auth      = fs.String("auth", "ANONYMOUS,PLAIN,DIGEST-MD5", "mechanisms offered, comma-separated")
		tunnels   = fs.String("tunnels", "V6V4,V6UDPV4", "tunnel types offered: V6V4, V6UDPV4, V4V6")
		versions  = fs.String("versions", "2.0.2,2.0.1,2.0.0,1.0.1", "accepted TSP versions; others get 302")
		realm     = fs.String("realm", "", "DIGEST-MD5 realm (default cdpatsps)")
		pool6     = fs.String("client-pool", "", "client IPv6 pool (default 2001:db8:ab::/64)")
		pool4     = fs.String("client-pool4", "", "v4v6 client IPv4 pool (default 198.18.0.0/24)")
		prefixes  = fs.String("prefix-pool", "", "delegation pool (default 2001:db8:8000::/33)")
		serverV4  = fs.String("server-v4", "", "server IPv4 tunnel endpoint (default: listening address; required for a wildcard UDP listener)")
		serverV6  = fs.String("server-v6", "", "server tunnel IPv6 and keepalive address (default: client pool ::1)")
		keepalive = fs.Int("keepalive", 0, "keepalive interval: 0 echo the client's (min 5), >0 force, <0 none")
		lifetime  = fs.Int("lifetime", 0, "offer lifetime in seconds (default 604800)")
		mtu       = fs.Int("mtu", 0, "mtu attribute in offers (0: none)")
		domain    = fs.String("domain", "", "give authenticated clients the DNS name <user>.<domain>")
		redirPh   = fs.String("redirect-phase", "", "phase for -redirect: version, auth, auth-step, auth-final, tunnel")
		strict    = fs.Bool("strict-rudp", false, "read RUDP headers as tsps does on little-endian hosts")
		maxSess   = fs.Int("max-sessions", 0, "session limit (default 4096)")
		perSource = fs.Int("max-per-source", 0, "sessions per client IP (default 1024)")
		idle      = fs.Duration("idle", 0, "idle timeout of negotiating sessions (default 2m)")
		verbose   = fs.Bool("v", false, "debug logging")
		dataplane = fs.Bool("dataplane", false, "carry tunnel traffic: TUN tsps0 (v6udpv4), tsps41 (v6v4) and tsps4 (v4v6, when offered) in this namespace (needs root)")
		users     listFlag
		dns       listFlag
		redirect  listFlag
	)
	fs.Var(&users, "user", "user `name:password` for PLAIN and DIGEST-MD5 (repeatable)")
	fs.Var(&dns, "dns", "IPv6 or IPv4 `address` sent as client dns_server (repeatable)")
	fs.Var(&redirect, "redirect", "answer 1200 with this broker, `kind=address`, kind ipv4|ipv6|dn (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tspbroker: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *udpAddr == "" && *tcpAddr == "" {
		fmt.Fprintln(stderr, "tspbroker: nothing to listen on (-udp and -tcp both empty)")
		return 2
	}

	level := logx.LevelInfo
	if *verbose {
		level = logx.LevelDebug
	}
	cfg := testbroker.Config{
		Tunnels:           splitList(*tunnels),
		Auth:              splitList(*auth),
		Versions:          splitList(*versions),
		Realm:             *realm,
		Users:             map[string]string{},
		KeepaliveInterval: *keepalive,
		Lifetime:          *lifetime,
		MTU:               *mtu,
		ClientDomain:      *domain,
		StrictRUDP:        *strict,
		Faults:            testbroker.Faults{RedirectPhase: *redirPh},
		Limits:            testbroker.Limits{MaxSessions: *maxSess, MaxPerSource: *perSource, IdleTimeout: *idle},
		Log:               logx.Writer(stderr, level),
	}
	var err error
	for _, u := range users {
		name, pass, ok := strings.Cut(u, ":")
		if !ok || name == "" {
			fmt.Fprintln(stderr, "tspbroker: -user: want name:password") // never echo a password
			return 2
		}
		cfg.Users[name] = pass
	}
	for _, r := range redirect {
		kind, addr, ok := strings.Cut(r, "=")
		if !ok || addr == "" {
			fmt.Fprintf(stderr, "tspbroker: -redirect %q: want kind=address\n", r)
			return 2
		}
		cfg.Redirect = append(cfg.Redirect, testbroker.Broker{Kind: kind, Address: addr})
	}
	for _, d := range dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			fmt.Fprintf(stderr, "tspbroker: -dns: %v\n", err)
			return 2
		}
		cfg.DNSServers = append(cfg.DNSServers, a)
	}
	if cfg.ClientPool, err = optPrefix(*pool6); err == nil {
		if cfg.ClientPool4, err = optPrefix(*pool4); err == nil {
			if cfg.PrefixPool, err = optPrefix(*prefixes); err == nil {
				if cfg.ServerV4, err = optAddr(*serverV4); err == nil {
					cfg.ServerV6, err = optAddr(*serverV6)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tspbroker: %v\n", err)
		return 2
	}

	var dp *dataPlane
	if *dataplane {
		if dp, err = newDataPlane(ctx, dataPlaneFor(cfg)); err != nil {
			fmt.Fprintf(stderr, "tspbroker: %v\n", err)
			return 1
		}
		defer dp.Close() // after srv.Close: sessions are told Closed first
		cfg.DataPlane = dp
	}
	srv, err := testbroker.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tspbroker: %v\n", err)
		return 2
	}
	udp, tcp, err := srv.Start(*udpAddr, *tcpAddr)
	if err != nil {
		fmt.Fprintf(stderr, "tspbroker: %v\n", err)
		srv.Close()
		return 1
	}
	if udp.IsValid() {
		fmt.Fprintf(stdout, "listening udp %s\n", udp)
		if udp.Addr().IsUnspecified() && !cfg.ServerV4.IsValid() {
			fmt.Fprintln(stderr, "tspbroker: warning: wildcard UDP listener without -server-v4: v6 offers over UDP will fail with 310")
		}
	}
	if tcp.IsValid() {
		fmt.Fprintf(stdout, "listening tcp %s\n", tcp)
	}
	<-ctx.Done()
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		err = errors.New("close timed out")
	}
	if err != nil {
		fmt.Fprintf(stderr, "tspbroker: %v\n", err)
		return 1
	}
	st := srv.Stats()
	fmt.Fprintf(stdout, "stopped: %d sessions, %d established, %d retransmissions answered\n",
		st.Sessions, st.Established, st.Retransmits)
	return 0
}

// dataPlaneFor fills in the testbroker's defaults the data plane needs.
func dataPlaneFor(cfg testbroker.Config) dataPlaneConfig {
	d := dataPlaneConfig{
		ServerV6:   cfg.ServerV6,
		ServerV4:   cfg.ServerV4,
		ClientPool: cfg.ClientPool,
		PrefixPool: cfg.PrefixPool,
		V6V4:       len(cfg.Tunnels) == 0 || slices.ContainsFunc(cfg.Tunnels, func(t string) bool { return strings.EqualFold(t, testbroker.TunnelV6V4) }),
		Log:        cfg.Log,
	}
	if slices.ContainsFunc(cfg.Tunnels, func(t string) bool { return strings.EqualFold(t, testbroker.TunnelV4V6) }) {
		d.V4V6Pool = cfg.ClientPool4
		if !d.V4V6Pool.IsValid() {
			d.V4V6Pool = netip.MustParsePrefix("198.18.0.0/24") // testbroker's default
		}
	}
	if !d.ClientPool.IsValid() {
		d.ClientPool = netip.MustParsePrefix("2001:db8:ab::/64")
	}
	if !d.PrefixPool.IsValid() {
		d.PrefixPool = netip.MustParsePrefix("2001:db8:8000::/33")
	}
	if !d.ServerV6.IsValid() {
		d.ServerV6 = d.ClientPool.Addr().Next()
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func optPrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("prefix: %w", err)
	}
	return p, nil
}

func optAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("address: %w", err)
	}
	return a, nil
}
