package tsp

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// scriptedDialer hands out scripted transports per (server, network) and
// records the attempts in order.
type scriptedDialer struct {
	// brokers maps "server/network" to a function building the replies for
	// one attempt at a version; nil replies mean "no answer at all".
	brokers  map[string]func(version string) []string
	attempts []string
}

func (d *scriptedDialer) dial(_ context.Context, server string, network Network) (Transport, error) {
	key := server + "/" + string(network)
	f, ok := d.brokers[key]
	if !ok {
		d.attempts = append(d.attempts, key+" refused")
		return nil, errors.New("connection refused")
	}
	return &versionSpy{scripted: newScripted(network), d: d, key: key, f: f}, nil
}

// versionSpy builds its replies once it sees the VERSION line.
type versionSpy struct {
	*scripted
	d   *scriptedDialer
	key string
	f   func(string) []string
}

func (v *versionSpy) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	if ver, ok := strings.CutPrefix(string(msg), "VERSION="); ok {
		ver = strings.TrimSpace(ver)
		v.d.attempts = append(v.d.attempts, v.key+" "+ver)
		for _, r := range v.f(ver) {
			v.replies = append(v.replies, []byte(r))
		}
	}
	return v.scripted.Exchange(ctx, msg)
}

const anonCap = "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=ANONYMOUS\r\n"

func answering(offer TunnelType) func(string) []string {
	return func(string) []string { return []string{anonCap, "200 Success\r\n", offerReply(offerXML(offer, ""))} }
}

func noAnswer(string) []string { return nil }

func TestNegotiatorFallbacks(t *testing.T) {
	onlyOld := func(v string) []string {
		if v != "1.0.1" {
			return []string{"302 Unsupported client version\r\n"}
		}
		return answering(V6V4)(v)
	}
	redirectTo := func(servers ...string) func(string) []string {
		return func(string) []string {
			x := "1200 Redirect\r\n<tunnel action=\"info\"><broker>"
			for _, s := range servers {
				x += "<address type=\"dn\">" + s + "</address>"
			}
			return []string{x + "</broker></tunnel>\r\n"}
		}
	}
	tests := []struct {
		name     string
		mode     TunnelType
		brokers  map[string]func(string) []string
		attempts string
		err      error
	}{
		{"udp answers", V6AnyV4, map[string]func(string) []string{"b/udp": answering(V6UDPV4)}, "b/udp 2.0.2", nil},
		{"udp silent, tcp answers", V6AnyV4, map[string]func(string) []string{"b/udp": noAnswer, "b/tcp": answering(V6V4)},
			"b/udp 2.0.2,b/tcp 2.0.2", nil},
		{"v6udpv4 never falls back to tcp", V6UDPV4, map[string]func(string) []string{"b/udp": noAnswer, "b/tcp": answering(V6V4)},
			"b/udp 2.0.2", ErrNoReply},
		{"version fallback down to tcp 1.0.1", V6V4, map[string]func(string) []string{"b/udp": onlyOld, "b/tcp": onlyOld},
			"b/udp 2.0.2,b/udp 2.0.1,b/udp 2.0.0,b/tcp 1.0.1", nil},
		{"v6udpv4 stops at 2.0.0", V6UDPV4, map[string]func(string) []string{"b/udp": onlyOld},
			"b/udp 2.0.2,b/udp 2.0.1,b/udp 2.0.0", ErrUnsupportedVersion},
		{"redirect followed", V6UDPV4, map[string]func(string) []string{"b/udp": redirectTo("c"), "c/udp": answering(V6UDPV4)},
			"b/udp 2.0.2,c/udp 2.0.2", nil},
		{"dead broker in list skipped", V6UDPV4, map[string]func(string) []string{"b/udp": redirectTo("dead", "c"), "c/udp": answering(V6UDPV4)},
			"b/udp 2.0.2,dead/udp refused,c/udp 2.0.2", nil},
		{"redirect loop detected", V6UDPV4, map[string]func(string) []string{"b/udp": redirectTo("c"), "c/udp": redirectTo("b")},
			"b/udp 2.0.2,c/udp 2.0.2", ErrRedirectLoop},
		{"redirect chain too deep", V6UDPV4, map[string]func(string) []string{"b/udp": redirectTo("c1"), "c1/udp": redirectTo("c2"),
			"c2/udp": redirectTo("c3"), "c3/udp": redirectTo("c4"), "c4/udp": redirectTo("c5"), "c5/udp": answering(V6UDPV4)},
			"b/udp 2.0.2,c1/udp 2.0.2,c2/udp 2.0.2,c3/udp 2.0.2,c4/udp 2.0.2", ErrRedirectLoop},
		{"auth failure is not failed over", V6UDPV4, map[string]func(string) []string{
			"b/udp": func(string) []string { return []string{anonCap, "300 Authentication failed\r\n"} }},
			"b/udp 2.0.2", ErrAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &scriptedDialer{brokers: tt.brokers}
			n := &Negotiator{Dial: d.dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: tt.mode}}
			res, err := n.Negotiate(context.Background(), "b")
			if got := strings.Join(d.attempts, ","); got != tt.attempts {
				t.Errorf("attempts %s\nwant     %s", got, tt.attempts)
			}
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if res.Offer == nil || res.Session == nil {
					t.Fatal("no offer")
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
		})
	}
}

func TestNegotiatorReportsServer(t *testing.T) {
	d := &scriptedDialer{brokers: map[string]func(string) []string{
		"b/udp": func(string) []string {
			return []string{"1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"ipv6\">2001:db8::20</address></broker></tunnel>\r\n"}
		},
		"[2001:db8::20]/udp": answering(V6UDPV4),
	}}
	n := &Negotiator{Dial: d.dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4}}
	res, err := n.Negotiate(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != "[2001:db8::20]" || res.Session.Creds.Server != res.Server {
		t.Fatalf("server %q / creds %q", res.Server, res.Session.Creds.Server)
	}
}
