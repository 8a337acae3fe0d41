package tsp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// auth_method any takes PASSDSS-3DES-1, then DIGEST-MD5, and never PLAIN
// (a deliberate difference from gogoc 1.2, which fell back to PLAIN): a
// broker offering nothing better gets a clear refusal, and the password
// never leaves the router.
func TestAnyNeverSendsPlain(t *testing.T) {
	for caps, offers := range map[string]string{
		"AUTH=PLAIN":                "AUTH=PLAIN; any never sends the password in clear: set auth_method plain",
		"AUTH=PLAIN AUTH=ANONYMOUS": "AUTH=ANONYMOUS AUTH=PLAIN; any never sends the password in clear: set auth_method plain",
		"AUTH=ANONYMOUS":            "broker offers AUTH=ANONYMOUS",
	} {
		tr := newScripted(UDP, "CAPABILITY TUNNEL=V6UDPV4 "+caps+"\r\n", "", "200 Success\r\n")
		s := &Session{T: tr, Creds: Credentials{Method: AuthAny, UserID: "alice", Password: "Quokka-pw"}, Request: Request{Type: V6UDPV4}}
		_, err := s.Negotiate(context.Background())
		if !errors.Is(err, ErrNoCommonAuth) {
			t.Fatalf("%s: %v, want ErrNoCommonAuth", caps, err)
		}
		for _, want := range []string{"auth_method any accepts PASSDSS-3DES-1 or DIGEST-MD5", offers} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", caps, err, want)
			}
		}
		if len(tr.sent) != 1 {
			t.Errorf("%s: sent %q after CAPABILITY", caps, tr.sent[1:])
		}
	}
	// Configured as plain, PLAIN is what the operator asked for.
	if m, err := chooseMechanism(AuthPlain, CapPlain|CapDigestMD5); err != nil || m != mechPlain {
		t.Errorf("plain: %q %v", m, err)
	}
}

// A redirect is not followed with auth_method plain: PLAIN goes only to
// the broker the operator configured. The error keeps the broker list, so
// the operator can configure one of them.
func TestPlainDoesNotFollowRedirects(t *testing.T) {
	d := &scriptedDialer{brokers: map[string]func(string) []string{
		"b/udp": func(string) []string {
			return []string{"CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN\r\n", "", "1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">c.example</address></broker></tunnel>\r\n"}
		},
		"c.example/udp": answering(V6UDPV4),
	}}
	n := &Negotiator{Dial: d.dial, Creds: Credentials{Method: AuthPlain, UserID: "alice", Password: "Quokka-pw"}, Request: Request{Type: V6UDPV4}}
	_, err := n.Negotiate(context.Background(), "b")
	var rd *RedirectError
	if !errors.Is(err, ErrPlainRedirect) || !errors.As(err, &rd) || len(rd.Brokers) != 1 || rd.Brokers[0].Address != "c.example" {
		t.Fatalf("got %v, want ErrPlainRedirect carrying the broker list", err)
	}
	if got := strings.Join(d.attempts, ","); got != "b/udp 2.0.2" {
		t.Fatalf("attempts %s: the redirect was followed", got)
	}
	// The same redirect with any is followed, without PLAIN.
	d.attempts = nil
	n.Creds.Method = AuthAny
	d.brokers["b/udp"] = func(string) []string {
		return []string{"1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">c.example</address></broker></tunnel>\r\n"}
	}
	d.brokers["c.example/udp"] = func(string) []string { return []string{"CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN AUTH=ANONYMOUS\r\n"} }
	if _, err := n.Negotiate(context.Background(), "b"); !errors.Is(err, ErrNoCommonAuth) {
		t.Fatalf("any, redirected to a PLAIN-only broker: %v", err)
	}
	if got := strings.Join(d.attempts, ","); got != "b/udp 2.0.2,c.example/udp 2.0.2" {
		t.Fatalf("attempts %s", got)
	}
}

// A redirect target a supervisor remembered (broker list, last server) is
// given back with its Origin: with plain it is not even dialled, and its
// address must pass the policy, as when it came in the redirect.
func TestRememberedRedirectTarget(t *testing.T) {
	d := &scriptedDialer{brokers: map[string]func(string) []string{"c.example/udp": answering(V6UDPV4)}}
	n := &Negotiator{Dial: d.dial, Creds: Credentials{Method: AuthPlain, UserID: "alice", Password: "Quokka-pw"},
		Request: Request{Type: V6UDPV4}, From: Origin{Redirect: true}}
	if _, err := n.Negotiate(context.Background(), "c.example"); !errors.Is(err, ErrPlainRedirect) || len(d.attempts) != 0 {
		t.Fatalf("plain to a remembered redirect target: %v, attempts %q; want ErrPlainRedirect and none", err, d.attempts)
	}
	// The configured server gets PLAIN as configured.
	d.brokers["b/udp"] = func(string) []string {
		return []string{"CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN\r\n", "", "200 Success\r\n"}
	}
	n.From = Origin{}
	if _, err := n.Negotiate(context.Background(), "b"); errors.Is(err, ErrPlainRedirect) {
		t.Fatalf("plain to the configured server: %v", err)
	}

	// A remembered far redirect's target whose name now leads to this host.
	loop := func(string) []string { return []string{"CAPABILITY TUNNEL=V6UDPV4 AUTH=ANONYMOUS\r\n"} }
	dial := func(ctx context.Context, server string, network Network) (Transport, error) {
		tr := newScripted(network, loop("")...)
		tr.remote = netip.MustParseAddrPort("127.0.0.1:3653")
		return tr, nil
	}
	n = &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4}, From: Origin{Redirect: true}}
	var pe *PolicyError
	if _, err := n.Negotiate(context.Background(), "c.example"); !errors.As(err, &pe) || pe.Field != FieldRedirect {
		t.Fatalf("remembered far target on loopback: %v, want a policy refusal", err)
	}
	// ...unless the redirect came from a broker on this host.
	n.From.SameHost = true
	if res, err := n.Negotiate(context.Background(), "c.example"); errors.As(err, &pe) {
		t.Fatalf("remembered local target on loopback refused: %v", err)
	} else if err == nil {
		res.Session.T.Close()
	}
}
