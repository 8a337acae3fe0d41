package tsp_test

import (
	"bytes"
	"context"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA (spec §3.5).
	"crypto/dsa"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// Broker keys are made once per test binary: about 0.1 s each.
var (
	brokerKey = sync.OnceValues(testbroker.GenerateDSAKey)
	otherKey  = sync.OnceValues(testbroker.GenerateDSAKey)
)

func mustKey(t testing.TB, f func() (*dsa.PrivateKey, error)) *dsa.PrivateKey {
	t.Helper()
	k, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k *dsa.PrivateKey) knownkeys.Key {
	return knownkeys.Key{P: k.P, Q: k.Q, G: k.G, Y: k.Y}
}

// knownKeys writes a known-keys file holding key for host ("" writes no
// file) and returns its path.
func knownKeys(t testing.TB, host string, key *dsa.PrivateKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gogockeys.pub")
	if host != "" {
		if err := os.WriteFile(path, []byte("# test\n"+knownkeys.Entry(host, pub(key))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func passdssCreds(path string, policy tsp.KeyPolicy) tsp.Credentials {
	return tsp.Credentials{Method: tsp.AuthPassDSS, UserID: testUser, Password: testPass, KnownKeys: path, KeyPolicy: policy}
}

// A full PASSDSS-3DES-1 session against the test broker over loopback, on
// both transports and with "any" choosing it over DIGEST-MD5 and PLAIN.
func TestPassDSSSession(t *testing.T) {
	b := startBroker(t, "127.0.0.1", nil)
	path := knownKeys(t, "broker.test", mustKey(t, brokerKey))
	before := readFile(t, path)
	for _, network := range []tsp.Network{tsp.UDP, tsp.TCP} {
		for _, method := range []tsp.AuthMethod{tsp.AuthPassDSS, tsp.AuthAny} {
			creds := passdssCreds(path, tsp.KeyStrict)
			creds.Method = method
			n := &tsp.Negotiator{Dial: b.dial(network), Request: tsp.Request{Type: tsp.V6V4}, Creds: creds}
			res, err := n.Negotiate(ctxT(t), "broker.test")
			if err != nil {
				t.Fatalf("%s %s: %v", network, method, err)
			}
			if err := res.Session.Accept(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if res.Session.Mechanism != "PASSDSS-3DES-1" || res.Session.T.Network() != network {
				t.Errorf("%s %s: mechanism %s over %s", network, method, res.Session.Mechanism, res.Session.T.Network())
			}
			// Over TCP the accept is write-only: wait for the broker to see it.
			found := false
			for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				for _, s := range b.srv.Sessions() {
					if s.Client == res.Session.T.LocalAddr() {
						found = s.Mechanism == "PASSDSS-3DES-1" && s.User == testUser
					}
				}
			}
			if !found {
				t.Errorf("%s %s: broker has no PASSDSS session for %s", network, method, testUser)
			}
			res.Session.T.Close()
		}
	}
	if readFile(t, path) != before {
		t.Error("a matching key changed the file")
	}
	// A wrong password still fails as an authentication failure.
	creds := passdssCreds(path, tsp.KeyStrict)
	creds.Password = "wrong"
	n := &tsp.Negotiator{Dial: b.dial(), Request: tsp.Request{Type: tsp.V6V4}, Creds: creds}
	_, err := n.Negotiate(ctxT(t), "broker.test")
	var st *tsp.StatusError
	if !errors.Is(err, tsp.ErrAuthFailed) || !errors.As(err, &st) || st.Code != 300 {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestPassDSSKeyPolicies(t *testing.T) {
	b := startBroker(t, "127.0.0.1", nil)
	other := mustKey(t, otherKey)
	tests := []struct {
		name    string
		policy  tsp.KeyPolicy
		fileKey *dsa.PrivateKey // nil: no entry for the broker
		prompt  knownkeys.Prompt
		wantErr error
		stored  bool
	}{
		{"unknown strict", tsp.KeyStrict, nil, nil, tsp.ErrServerKeyUnknown, false},
		{"unknown default", "", nil, nil, tsp.ErrServerKeyUnknown, false},
		{"unknown strict, operator says yes", tsp.KeyStrict, nil, func(string, knownkeys.Key) (bool, error) { return true, nil }, nil, true},
		{"unknown strict, operator says no", tsp.KeyStrict, nil, func(string, knownkeys.Key) (bool, error) { return false, nil }, tsp.ErrServerKeyUnknown, false},
		{"unknown tofu", tsp.KeyTOFU, nil, nil, nil, true},
		{"unknown accept", tsp.KeyAccept, nil, nil, nil, false},
		{"changed strict", tsp.KeyStrict, other, nil, tsp.ErrServerKeyChanged, false},
		{"changed tofu", tsp.KeyTOFU, other, nil, tsp.ErrServerKeyChanged, false},
		{"changed accept", tsp.KeyAccept, other, nil, nil, false},
	}
	for _, tt := range tests {
		for _, network := range []tsp.Network{tsp.UDP, tsp.TCP} {
			t.Run(tt.name+"/"+string(network), func(t *testing.T) {
				host := ""
				if tt.fileKey != nil {
					host = "broker.test"
				}
				path := knownKeys(t, host, tt.fileKey)
				before := readFile(t, path)
				creds := passdssCreds(path, tt.policy)
				creds.KeyPrompt = tt.prompt
				n := &tsp.Negotiator{Dial: b.dial(network), Request: tsp.Request{Type: tsp.V6V4}, Creds: creds}
				res, err := n.Negotiate(ctxT(t), "broker.test")
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || !errors.Is(err, tsp.ErrAuthFailed) || !strings.Contains(err.Error(), "broker.test") {
						t.Fatalf("got %v, want %v", err, tt.wantErr)
					}
					t.Logf("refused: %v", err)
				} else if err != nil {
					t.Fatal(err)
				} else {
					res.Session.T.Close()
				}
				after := readFile(t, path)
				switch {
				case tt.stored:
					if want := before + knownkeys.Entry("broker.test", pub(mustKey(t, brokerKey))) + "\n"; after != want {
						t.Fatalf("file %q, want %q", after, want)
					}
					// The stored key now satisfies strict.
					n.Creds.KeyPolicy, n.Creds.KeyPrompt = tsp.KeyStrict, nil
					res, err := n.Negotiate(ctxT(t), "broker.test")
					if err != nil {
						t.Fatalf("strict after storing: %v", err)
					}
					res.Session.T.Close()
				case after != before:
					t.Fatalf("file changed: %q -> %q", before, after)
				}
			})
		}
	}
}

// tamper rewrites messages on their way: a man in the middle.
type tamper struct {
	tsp.Transport
	reply func(n int, msg []byte) []byte // the broker's nth reply to an Exchange
	send  func(n int, msg []byte) []byte // the client's nth Exchange message
	n     int
}

func (m *tamper) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	m.n++
	if m.send != nil {
		msg = m.send(m.n, msg)
	}
	r, err := m.Transport.Exchange(ctx, msg)
	if err == nil && m.reply != nil {
		r = m.reply(m.n, r)
	}
	return r, err
}

// Exchanges: 1 VERSION, 2 msg1 (the command is a Send), 3 msg3.
const exMsg1, exMsg3 = 2, 3

func flipB64(msg []byte, at func(n int) int) []byte {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(msg)))
	if err != nil {
		panic(err)
	}
	raw[at(len(raw))] ^= 0x01
	return []byte(base64.StdEncoding.EncodeToString(raw) + "\r\n")
}

func TestPassDSSRefusals(t *testing.T) {
	var logs lockedBuffer
	blog := logx.Writer(&logs, logx.LevelInfo)
	b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Log = blog })
	forger := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Faults.BadSignature = true })
	path := knownKeys(t, "broker.test", mustKey(t, brokerKey))

	// Record one good session's msg2 and msg3 for the replays.
	var msg2, msg3 []byte
	rec := func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		tr, err := b.dial(tsp.UDP)(ctx, server, network)
		return &tamper{Transport: tr,
			reply: func(n int, r []byte) []byte {
				if n == exMsg1 {
					msg2 = bytes.Clone(r)
				}
				return r
			},
			send: func(n int, m []byte) []byte {
				if n == exMsg3 {
					msg3 = bytes.Clone(m)
				}
				return m
			}}, err
	}
	res, err := (&tsp.Negotiator{Dial: rec, Request: tsp.Request{Type: tsp.V6V4}, Creds: passdssCreds(path, tsp.KeyStrict)}).Negotiate(ctxT(t), "broker.test")
	if err != nil || msg2 == nil || msg3 == nil {
		t.Fatalf("recording session: %v", err)
	}
	res.Session.T.Close()

	tests := []struct {
		name      string
		br        *broker
		reply     func(int, []byte) []byte
		send      func(int, []byte) []byte
		want      error
		brokerWhy string // the broker's logged reason, when it refuses
	}{
		{name: "wrong signature", br: forger, want: tsp.ErrBadServerSignature},
		{name: "replayed msg2", br: b, want: tsp.ErrBadServerSignature, reply: func(n int, r []byte) []byte {
			if n == exMsg1 {
				return msg2
			}
			return r
		}},
		{name: "tampered msg2 DH value", br: b, want: tsp.ErrBadServerSignature, reply: func(n int, r []byte) []byte {
			if n == exMsg1 { // the byte before the 4-byte layer and the signature ends Y
				return flipB64(r, func(l int) int { return l - 4 - 4 - 59 - 1 })
			}
			return r
		}},
		{name: "tampered msg3 ciphertext", br: b, want: tsp.ErrAuthFailed, brokerWhy: "PASSDSS msg3", send: func(n int, m []byte) []byte {
			if n == exMsg3 {
				return bytes.TrimSpace(flipB64(m, func(int) int { return 3 }))
			}
			return m
		}},
		{name: "replayed msg3", br: b, want: tsp.ErrAuthFailed, brokerWhy: "PASSDSS msg3", send: func(n int, m []byte) []byte {
			if n == exMsg3 {
				return msg3
			}
			return m
		}},
	}
	for _, tt := range tests {
		for _, network := range []tsp.Network{tsp.UDP, tsp.TCP} {
			t.Run(tt.name+"/"+string(network), func(t *testing.T) {
				logs.mu.Lock()
				logs.b.Reset()
				logs.mu.Unlock()
				tofu := filepath.Join(t.TempDir(), "tofu.pub") // TOFU: a refused broker must not be stored
				creds := passdssCreds(path, tsp.KeyStrict)
				if tt.want == tsp.ErrBadServerSignature {
					creds = passdssCreds(tofu, tsp.KeyTOFU)
				}
				dial := func(ctx context.Context, server string, nw tsp.Network) (tsp.Transport, error) {
					tr, err := tt.br.dial(network)(ctx, server, nw)
					if err != nil {
						return nil, err
					}
					return &tamper{Transport: tr, reply: tt.reply, send: tt.send}, nil
				}
				_, err := (&tsp.Negotiator{Dial: dial, Request: tsp.Request{Type: tsp.V6V4}, Creds: creds}).Negotiate(ctxT(t), "broker.test")
				if !errors.Is(err, tt.want) || !errors.Is(err, tsp.ErrAuthFailed) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				t.Logf("refused: %v", err)
				if strings.Contains(err.Error(), testPass) {
					t.Fatalf("error holds the password: %v", err)
				}
				if readFile(t, tofu) != "" {
					t.Error("key of a broker that failed its proof was stored")
				}
				if tt.brokerWhy != "" {
					var st *tsp.StatusError
					if !errors.As(err, &st) || st.Code != 300 {
						t.Errorf("want the broker's 300, got %v", err)
					}
					logs.mu.Lock()
					l := logs.b.String()
					logs.mu.Unlock()
					if !strings.Contains(l, tt.brokerWhy) {
						t.Errorf("broker log lacks %q:\n%s", tt.brokerWhy, l)
					}
				}
			})
		}
	}
}

// Garbage where msg2 belongs is a protocol error, not a crash or a hang.
func TestPassDSSMalformedMsg2(t *testing.T) {
	for name, raw := range map[string]string{
		"not base64":       "!!!!\r\n",
		"short key blob":   base64.StdEncoding.EncodeToString([]byte{0, 0, 0, 10, 1, 2}) + "\r\n",
		"truncated":        base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0, 240}, make([]byte, 100)...)) + "\r\n",
		"redirect instead": "",
	} {
		t.Run(name, func(t *testing.T) {
			b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) {
				if raw == "" {
					c.Redirect = []testbroker.Broker{{Kind: "dn", Address: "elsewhere.test"}}
					c.Faults.RedirectPhase = testbroker.PhaseAuthStep
					return
				}
				c.Faults.RawAt = map[string][]byte{testbroker.PhaseAuthStep: []byte(raw)}
			})
			n := &tsp.Negotiator{Dial: b.dial(tsp.TCP), Request: tsp.Request{Type: tsp.V6V4}, Creds: passdssCreds(knownKeys(t, "", nil), tsp.KeyTOFU), MaxRedirects: -1}
			s, err := n.Dial(ctxT(t), "broker.test", tsp.TCP)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sess := &tsp.Session{T: s, Creds: n.Creds, Request: n.Request}
			sess.Creds.Server = "broker.test"
			_, err = sess.Negotiate(ctxT(t))
			want := tsp.ErrMalformed
			if raw == "" {
				want = tsp.ErrRedirect
			}
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
}
