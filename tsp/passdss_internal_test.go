package tsp

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/des"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA (spec §3.5).
	"crypto/dsa"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// detReader is a deterministic byte stream, so that a test can draw the
// same DH private value as the session it watches.
type detReader struct {
	state [32]byte
	buf   []byte
}

func newDetReader(seed string) *detReader { return &detReader{state: sha256.Sum256([]byte(seed))} }

func (d *detReader) Read(p []byte) (int, error) {
	for i := range p {
		if len(d.buf) == 0 {
			d.state = sha256.Sum256(d.state[:])
			d.buf = d.state[:]
		}
		p[i], d.buf = d.buf[0], d.buf[1:]
	}
	return len(p), nil
}

func TestOakleyGroup2IsASafePrime(t *testing.T) {
	p := dhPrime()
	q := new(big.Int).Rsh(p, 1) // (p-1)/2
	if p.BitLen() != 1024 || !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
		t.Fatal("the group 2 constant is not the 1024-bit safe prime of RFC 2409")
	}
	if dhPrime() == p {
		t.Fatal("dhPrime shares its value")
	}
}

func TestChooseMechanismAnyPrefersPassDSS(t *testing.T) {
	tests := []struct {
		caps Capability
		want string
	}{
		{CapPassDSS | CapDigestMD5 | CapPlain | CapAnonymous, mechPassDSS},
		{CapDigestMD5 | CapPlain | CapAnonymous, mechDigestMD5},
		{CapPlain | CapAnonymous, ""}, // any never sends the password in clear
		{CapPlain, ""},
		{CapPassDSS, mechPassDSS},
		{CapAnonymous, ""},
	}
	for _, tt := range tests {
		got, err := chooseMechanism(AuthAny, tt.caps)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("%v: %q %v, want %q", tt.caps, got, err, tt.want)
		}
	}
	if got, err := chooseMechanism(AuthPassDSS, CapPassDSS|CapPlain); err != nil || got != mechPassDSS {
		t.Errorf("passdss-3des-1: %q %v", got, err)
	}
	if _, err := chooseMechanism(AuthPassDSS, CapDigestMD5|CapPlain); !errors.Is(err, ErrNoCommonAuth) {
		t.Errorf("passdss-3des-1 not offered: %v", err)
	}
}

// The bytes of the AUTHENTICATE line and msg1 (spec §3.5 steps 1-2): a
// broker refusal of msg1 stops the session there.
func TestPassDSSMsg1Bytes(t *testing.T) {
	for _, network := range []Network{UDP, TCP} {
		replies := []string{"CAPABILITY TUNNEL=V6V4 AUTH=PASSDSS-3DES-1\r\n"}
		if network == UDP {
			replies = append(replies, "") // the empty ack of the command
		}
		tr := newScripted(network, append(replies, "300 Authentication failed\r\n")...)
		s := &Session{T: tr, Request: Request{Type: V6V4},
			Creds: Credentials{Method: AuthAny, UserID: "alice", Password: "secret", Server: "b", dhRand: newDetReader("x")}}
		_, err := s.Negotiate(context.Background())
		var st *StatusError
		if !errors.Is(err, ErrAuthFailed) || !errors.As(err, &st) || st.Code != 300 {
			t.Fatalf("%s: %v", network, err)
		}
		if got := string(tr.sent[1]); got != "AUTHENTICATE PASSDSS-3DES-1\r\n\x00" || len(got) != 30 {
			t.Errorf("%s: command %q", network, got)
		}
		x, _ := randInt(newDetReader("x"))
		bigX := new(big.Int).Exp(big.NewInt(2), x, dhPrime())
		want := []byte{0, 0, 0, 0, 0, 0, 0, 5, 'a', 'l', 'i', 'c', 'e'}
		want = binary.BigEndian.AppendUint32(want, uint32(len(bigX.Bytes())))
		want = append(want, bigX.Bytes()...)
		if got := string(tr.sent[2]); got != base64.StdEncoding.EncodeToString(want) {
			t.Errorf("%s: msg1 %q\nwant %q", network, got, base64.StdEncoding.EncodeToString(want))
		}
	}
}

// randInt draws x as authPassDSS does.
func randInt(r *detReader) (*big.Int, error) {
	p := dhPrime()
	x, err := crand.Int(r, new(big.Int).Sub(p, big.NewInt(3)))
	if err != nil {
		return nil, err
	}
	return x.Add(x, big.NewInt(2)), nil
}

func TestSealPassDSSMsg3Layout(t *testing.T) {
	k := passdssKeys{iv: bytes.Repeat([]byte{1}, 8), intKey: bytes.Repeat([]byte{2}, 20), encKey: []byte("0123456789abcdefghijklmn")}
	hb := []byte("the hash buffer")
	for n := range 12 { // password lengths cross a block boundary
		pass := strings.Repeat("p", n)
		c, err := sealPassDSSMsg3(k, hb, 0x01, pass)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := des.NewTripleDESCipher(k.encKey)
		m := make([]byte, len(c))
		cipher.NewCBCDecrypter(block, k.iv).CryptBlocks(m, c)
		body := 4 + 4 + n + 20
		pad := 8 - body%8 // PKCS#7: 1..8, a whole block when aligned
		if len(m) != body+pad || !bytes.Equal(m[body:], bytes.Repeat([]byte{byte(pad)}, pad)) {
			t.Fatalf("len %d: padding % x", n, m[body-1:])
		}
		j := m[:8+n]
		if !bytes.Equal(j[:4], []byte{1, 0, 0, 0}) || binary.BigEndian.Uint32(j[4:]) != uint32(n) || string(j[8:]) != pass {
			t.Fatalf("len %d: J % x", n, j)
		}
		mac := hmac.New(sha1.New, k.intKey)
		mac.Write(hb)
		mac.Write(j[:4])
		if !hmac.Equal(m[8+n:body], mac.Sum(nil)) {
			t.Fatalf("len %d: HMAC over HB || J[0:4] wrong", n)
		}
	}
}

func TestDerivePassDSSKeys(t *testing.T) {
	mpK := []byte{0, 0, 0, 2, 0xab, 0xcd}
	h := bytes.Repeat([]byte{7}, 20)
	sum := func(s ...[]byte) []byte { x := sha1.Sum(bytes.Join(s, nil)); return x[:] }
	k := derivePassDSSKeys(mpK, h)
	k1 := sum(mpK, []byte("C"), h)
	if !bytes.Equal(k.iv, sum(mpK, []byte("A"), h)[:8]) || !bytes.Equal(k.intKey, sum(mpK, []byte("E"), h)) ||
		!bytes.Equal(k.encKey, append(k1, sum(mpK, k1)...)[:24]) {
		t.Fatal("keys differ from spec §3.5 step 8")
	}
}

// recorder keeps every message the broker sends.
type recorder struct {
	Transport
	mu      sync.Mutex
	replies [][]byte
}

func (r *recorder) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	b, err := r.Transport.Exchange(ctx, msg)
	r.mu.Lock()
	r.replies = append(r.replies, bytes.Clone(b))
	r.mu.Unlock()
	return b, err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A whole PASSDSS session logged at the lowest level, client and broker,
// must show neither the password nor the shared secret nor any session key
// in any form; nor may the errors of failed sessions.
func TestPassDSSNoSecretsInLogs(t *testing.T) {
	const pass = "Pa55-dss-s3cret"
	key, err := testbroker.GenerateDSAKey()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := logx.Writer(&logs, logx.LevelDebug-8)
	srv, err := testbroker.New(testbroker.Config{Auth: []string{testbroker.AuthPassDSS}, Users: map[string]string{"alice": pass},
		DSAKey: key, ServerV4: netip.MustParseAddr("127.0.0.1"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := srv.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Skipf("listen: %v", err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "keys.pub")
	pub := knownkeys.Key{P: key.P, Q: key.Q, G: key.G, Y: key.Y}
	if err := os.WriteFile(path, []byte(knownkeys.Entry("broker.test", pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var secrets []string
	var errs []string
	for i, network := range []Network{UDP, TCP, UDP, TCP} {
		addr := udp
		if network == TCP {
			addr = tcp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr, err := (&NetDialer{RUDP: RUDPConfig{InitialRTO: 50 * time.Millisecond}}).Dial(ctx, addr.String(), network)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		rec := &recorder{Transport: tr}
		seed := fmt.Sprint("session", i)
		p := secret.String(pass)
		if i >= 2 {
			p = "wrong-" + pass // failures log and return errors too
		}
		s := &Session{T: rec, Log: log, Request: Request{Type: V6V4},
			Creds: Credentials{Method: AuthPassDSS, UserID: "alice", Password: p, Server: "broker.test", KnownKeys: path, dhRand: newDetReader(seed)}}
		_, err = s.Negotiate(ctx)
		cancel()
		tr.Close()
		if (err == nil) != (i < 2) {
			t.Fatalf("session %d: %v", i, err)
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
		// Recompute what this session derived: x from the same stream, Y
		// from the broker's msg2 (the second reply over UDP, after the ack).
		var m2 *passdssMsg2
		for _, r := range rec.replies {
			if m, err := decodePassDSSMsg2(r); err == nil {
				m2 = m
			}
		}
		if m2 == nil {
			t.Fatalf("session %d: no msg2 recorded", i)
		}
		x, _ := randInt(newDetReader(seed))
		kNum := new(big.Int).Exp(m2.y, x, dhPrime())
		mpK := appendMPInt(nil, kNum)
		bigX := new(big.Int).Exp(big.NewInt(2), x, dhPrime())
		hb := knownkeys.AppendString(knownkeys.AppendString(nil, nil), []byte("alice"))
		hb = appendMPInt(hb, bigX)
		hb = binary.BigEndian.AppendUint32(hb, uint32(len(m2.keyBlob)))
		hb = append(hb, m2.keyBlob...)
		hb = appendMPInt(hb, m2.y)
		hb = append(hb, m2.layer[:]...)
		h := sha1.Sum(append(bytes.Clone(hb), mpK...))
		keys := derivePassDSSKeys(mpK, h[:])
		for _, b := range [][]byte{kNum.Bytes(), keys.iv, keys.intKey, keys.encKey, x.Bytes()} {
			secrets = append(secrets, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
				base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b), kNum.String())
		}
		// The broker's signature over our H proves the recomputation
		// (K included) matches the session's.
		if !dsa.Verify(&key.PublicKey, h[:], m2.r, m2.s) {
			t.Fatalf("session %d: recomputed H is not the signed one", i)
		}
	}
	out := logs.String() + strings.Join(errs, "\n")
	if !strings.Contains(out, "PASSDSS broker key") || !strings.Contains(out, "authenticated") || len(errs) != 2 {
		t.Fatalf("logs or errors missing, the check would be vacuous:\n%s", out)
	}
	for _, s := range append(secrets, pass) {
		if len(s) >= 8 && strings.Contains(out, s) {
			t.Errorf("log or error holds a secret %q:\n%s", s, out)
		}
	}
}

// A key no DSA verification should run on is refused before the file is
// consulted, under any policy.
func TestPassDSSUnusableKeyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.pub")
	tr := newScripted(UDP, "CAPABILITY TUNNEL=V6V4 AUTH=PASSDSS-3DES-1\r\n", "", base64.StdEncoding.EncodeToString(fuzzMsg2())+"\r\n")
	s := &Session{T: tr, Request: Request{Type: V6V4},
		Creds: Credentials{Method: AuthPassDSS, UserID: "alice", Password: "secret", Server: "b", KnownKeys: path, KeyPolicy: KeyAccept}}
	_, err := s.Negotiate(context.Background())
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "q does not divide p-1") {
		t.Fatalf("got %v", err)
	}
	if len(tr.sent) != 3 {
		t.Fatalf("%d messages sent; msg3 must not follow a refused key", len(tr.sent))
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("known keys file touched")
	}
}
