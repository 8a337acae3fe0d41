package testbroker

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"strings"
	"testing"
)

// The spec's §3.4 test vector.
const (
	vecChallengeB64 = "cmVhbG09ImNkcGF0c3BzIixub25jZT0iMUEyQjNDNEQiLHFvcD1hdXRoLGFsZ29yaXRobT1tZDUtc2VzcyxjaGFyc2V0PXV0Zjg="
	vecClientLine   = `charset=utf8,username="alice",realm="cdpatsps",nonce="1A2B3C4D",nc=00000001,cnonce="1700000000",digest-uri="tsp/tsps.example.net",response=66736c4ae25c72216cf0d3491a99c99e,qop=auth`
	vecProofB64     = "cnNwYXV0aD0yNjE5Y2Q4ZGU3ZWRmZGJkNjRlNWM1MDAxODFhZTZkNA=="
)

func TestDigestHashesVector(t *testing.T) {
	resp, proof := digestHashes("alice", "cdpatsps", "secret", "1A2B3C4D", "1700000000", "tsp/tsps.example.net", "2.0.2")
	if resp != "66736c4ae25c72216cf0d3491a99c99e" || proof != "2619cd8de7edfdbd64e5c500181ae6d4" {
		t.Fatalf("response %s rspauth %s", resp, proof)
	}
	if h := md5.Sum([]byte("alice:cdpatsps:secret")); fmt.Sprintf("%x", h) != "5cab84e31f5d792f932eb52dc01b0b94" {
		t.Fatalf("H(u:r:p) = %x", h)
	}
}

func TestDigestVectorUDP(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.FixedNonce = "1A2B3C4D"
	_, udp, _ := startServer(t, cfg)
	c := dialUDP(t, udp)
	c.x(msgVersion)
	if got := c.x(msgDigest); got != vecChallengeB64+"\r\n" {
		t.Fatalf("challenge %q", got)
	}
	if got := c.x(b64(vecClientLine) + "\r\n"); got != vecProofB64+"\r\n" {
		t.Fatalf("proof %q", got)
	}
	if got := c.x(""); got != okLine { // the 8-byte poll
		t.Fatalf("final status %q", got)
	}
}

func TestDigestVectorTCP(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.FixedNonce = "1A2B3C4D"
	_, _, tcp := startServer(t, cfg)
	c := dialTCP(t, tcp)
	c.x(msgVersion)
	if got := c.x(msgDigest); got != vecChallengeB64+"\r\n" {
		t.Fatalf("challenge %q", got)
	}
	c.write(b64(vecClientLine) + "\r\n")
	// Proof and status come in one write: both must be in the buffer at once.
	if got := c.line(); got != vecProofB64+"\r\n" {
		t.Fatalf("proof %q", got)
	}
	if c.r.Buffered() != len(okLine) {
		t.Fatalf("status not written with the proof: %d bytes buffered", c.r.Buffered())
	}
	if got := c.line(); got != okLine {
		t.Fatalf("final status %q", got)
	}
}

func TestAuthUDP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps [][2]string // message, expected reply ("*" for any)
		user  string
	}{
		{"anonymous", [][2]string{{msgAnonymous, okLine}}, ""},
		{"plain", [][2]string{{msgPlain, ""}, {plainCreds("alice", "secret"), okLine}}, "alice"},
		{"plain odd user", [][2]string{{msgPlain, ""}, {plainCreds("bob@example.net", "p,w\"x"), okLine}}, "bob@example.net"},
		{"plain bad password", [][2]string{{msgPlain, ""}, {plainCreds("alice", "wrong"), "300 Authentication failed\r\n"}}, ""},
		{"plain unknown user", [][2]string{{msgPlain, ""}, {plainCreds("eve", "secret"), "300 Authentication failed\r\n"}}, ""},
		{"not offered", [][2]string{{"AUTHENTICATE PASSDSS-3DES-1\r\n\x00", "300 Authentication failed\r\n"}}, ""},
		{"no authenticate", [][2]string{{createMsg("v6v4", "127.0.0.1", 30, -1), "300 Authentication failed\r\n"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, udp, _ := startServer(t, testConfig())
			c := dialUDP(t, udp)
			if got := c.x(msgVersion); got != capDefault {
				t.Fatalf("capability %q", got)
			}
			for _, st := range tc.steps {
				if got := c.x(st[0]); st[1] != "*" && got != st[1] {
					t.Fatalf("reply to %q: %q, want %q", st[0], got, st[1])
				}
			}
			if tc.user == "" && !strings.Contains(tc.name, "anonymous") {
				return
			}
			mustFramed(t, c.x(createMsg("v6v4", "127.0.0.1", 30, -1)))
			if got := c.x(msgAccept); got != "" {
				t.Fatalf("accept ack %q", got)
			}
			ss := s.Sessions()
			if len(ss) != 1 || ss[0].User != tc.user || ss[0].Transport != TransportUDP {
				t.Fatalf("sessions %+v", ss)
			}
		})
	}
}

func TestDigestUDPAndTCP(t *testing.T) {
	for _, user := range []string{"alice", "bob@example.net"} {
		pass := testConfig().Users[user]
		t.Run("udp "+user, func(t *testing.T) {
			s, udp, _ := startServer(t, testConfig())
			c := dialUDP(t, udp)
			c.x(msgVersion)
			line, proof := digestResponse(t, c.x(msgDigest), user, pass, "1700000001", "[2001:db8::1]:3653")
			if got := b64decode(t, c.x(b64(line)+"\r\n")); got != "rspauth="+proof {
				t.Fatalf("proof %q, want %q", got, proof)
			}
			if got := c.x(""); got != okLine {
				t.Fatalf("final %q", got)
			}
			mustFramed(t, c.x(createMsg("v6anyv4", "127.0.0.1", 30, -1)))
			c.x(msgAccept)
			if ss := s.Sessions(); len(ss) != 1 || ss[0].User != user || ss[0].Mechanism != AuthDigestMD5 {
				t.Fatalf("sessions %+v", ss)
			}
		})
		t.Run("tcp "+user, func(t *testing.T) {
			s, _, tcp := startServer(t, testConfig())
			c := dialTCP(t, tcp)
			c.x(msgVersion)
			line, proof := digestResponse(t, c.x(msgDigest), user, pass, "1700000001", "broker.example.net")
			if got := b64decode(t, c.x(b64(line)+"\r\n")); got != "rspauth="+proof {
				t.Fatalf("proof %q", got)
			}
			if got := c.line(); got != okLine {
				t.Fatalf("final %q", got)
			}
			c.write(createMsg("v6v4", "127.0.0.1", 30, -1))
			c.framed()
			c.write(msgAccept)
			waitFor(t, "established", func() bool { return len(s.Sessions()) == 1 })
			if ss := s.Sessions(); ss[0].User != user || ss[0].Transport != TransportTCP {
				t.Fatalf("sessions %+v", ss)
			}
		})
	}
}

func TestDigestRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.FixedNonce = "1A2B3C4D"
	good := vecClientLine
	for name, line := range map[string]string{
		"wrong password": strings.Replace(good, "response=66736c4ae25c72216cf0d3491a99c99e", "response=00000000000000000000000000000000", 1),
		"wrong realm":    strings.Replace(good, `realm="cdpatsps"`, `realm="other"`, 1),
		"wrong nonce":    strings.Replace(good, `nonce="1A2B3C4D"`, `nonce="DEADBEEF"`, 1),
		"wrong nc":       strings.Replace(good, "nc=00000001", "nc=00000002", 1),
		"no digest-uri":  strings.Replace(good, `digest-uri="tsp/tsps.example.net",`, "", 1),
		"bad digest-uri": strings.Replace(good, `digest-uri="tsp/`, `digest-uri="xmpp/`, 1),
		"no cnonce":      strings.Replace(good, `cnonce="1700000000",`, "", 1),
		"unknown user":   strings.Replace(good, `username="alice"`, `username="mallory"`, 1),
		"upper-case hex": strings.Replace(good, "66736c4ae25c72216cf0d3491a99c99e", "66736C4AE25C72216CF0D3491A99C99E", 1),
		"duplicate key":  good + ",nc=00000001",
		"unterminated":   `username="alice`,
	} {
		t.Run(name, func(t *testing.T) {
			s, udp, _ := startServer(t, cfg)
			c := dialUDP(t, udp)
			c.x(msgVersion)
			c.x(msgDigest)
			if got := c.x(b64(line) + "\r\n"); got != "300 Authentication failed\r\n" {
				t.Fatalf("got %q", got)
			}
			if s.Stats().AuthFailures != 1 {
				t.Fatalf("stats %+v", s.Stats())
			}
		})
	}
}

// A user whose H(user:realm:pass) holds a zero byte gets BUG1455's short A1
// with versions 2.0.0 and 1.0.1, the correct one from 2.0.1 on.
func TestDigestBug1455(t *testing.T) {
	pass := ""
	for i := 0; ; i++ {
		p := fmt.Sprintf("pw%d", i)
		if h := md5.Sum([]byte("alice:cdpatsps:" + p)); bytes.IndexByte(h[:], 0) >= 0 {
			pass = p
			break
		}
	}
	buggy := func(nonce, cnonce, uri string) string {
		h := md5.Sum([]byte("alice:cdpatsps:" + pass))
		ha1 := md5hexT(h[:bytes.IndexByte(h[:], 0)])
		return md5hexT([]byte(ha1 + ":" + nonce + ":00000001:" + cnonce + ":auth:" + md5hexT([]byte("AUTHENTICATE:"+uri))))
	}
	cfg := Config{Users: map[string]string{"alice": pass}}
	cfg.Faults.FixedNonce = "1A2B3C4D"
	for _, tc := range []struct {
		version string
		bug     bool
		ok      bool
	}{
		{"2.0.0", true, true}, {"2.0.0", false, false},
		{"2.0.2", false, true}, {"2.0.2", true, false},
	} {
		t.Run(fmt.Sprintf("%s bug=%v", tc.version, tc.bug), func(t *testing.T) {
			_, udp, _ := startServer(t, cfg)
			c := dialUDP(t, udp)
			c.x("VERSION=" + tc.version + "\r\n")
			line, _ := digestResponse(t, c.x(msgDigest), "alice", pass, "42", "h")
			if tc.bug {
				i := strings.Index(line, "response=") + len("response=")
				line = line[:i] + buggy("1A2B3C4D", "42", "tsp/h") + line[i+32:]
			}
			got := c.x(b64(line) + "\r\n")
			if tc.ok && !strings.HasPrefix(b64decode(t, got), "rspauth=") || !tc.ok && got != "300 Authentication failed\r\n" {
				t.Fatalf("reply %q, want ok=%v", got, tc.ok)
			}
		})
	}
}

func md5hexT(b []byte) string { return fmt.Sprintf("%x", md5.Sum(b)) }

func TestPlainTCPOneSegment(t *testing.T) {
	_, _, tcp := startServer(t, testConfig())
	for _, tc := range []struct{ creds, want string }{
		{plainCreds("alice", "secret"), okLine},
		{plainCreds("alice", "nope"), "300 Authentication failed\r\n"},
	} {
		c := dialTCP(t, tcp)
		c.x(msgVersion)
		// gogoc writes the command and the credentials back to back (spec §1.4).
		c.write(msgPlain + tc.creds)
		if got := c.line(); got != tc.want {
			t.Fatalf("got %q want %q", got, tc.want)
		}
	}
}

func TestAnonymousTCP(t *testing.T) {
	_, _, tcp := startServer(t, testConfig())
	c := dialTCP(t, tcp)
	if got := c.x(msgVersion); got != capDefault {
		t.Fatalf("capability %q", got)
	}
	if got := c.x(msgAnonymous); got != okLine {
		t.Fatalf("anonymous %q", got)
	}
}

func TestParseDirectives(t *testing.T) {
	d, err := parseDirectives(` username="a\"b\\c,d" , realm=r x,,nc=00000001, qop="auth"`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": `a"b\c,d`, "realm": "r x", "nc": "00000001", "qop": "auth"}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Fatalf("got %q", d)
	}
	for _, bad := range []string{`a`, `a="x" y`, `=x`, `a=1,A=2`, `a="x`} {
		if _, err := parseDirectives(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParsePlain(t *testing.T) {
	for in, want := range map[string]string{
		"\x00alice\x00secret\r\n":          "alice/secret",
		"\x00\x00alice\x00secret\r\n":      "alice/secret",
		"alice\x00alice\x00secret\r\n":     "alice/secret",
		"\x00alice\x00se cr et\x00\r\n":    "alice/se cr et",
		"\x00alice\r\n":                    "error",
		"bob\x00alice\x00secret\r\n":       "error",
		"\x00\x00secret\r\n":               "error",
		"\x00alice\x00secret\x00extra\r\n": "error",
	} {
		u, p, err := parsePlain([]byte(in))
		got := u + "/" + p
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}
