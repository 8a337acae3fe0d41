package testbroker

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/des"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA (spec §3.5).
	"crypto/dsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
)

var testDSAKey = sync.OnceValues(GenerateDSAKey)

func dsaKey(t testing.TB) *dsa.PrivateKey {
	t.Helper()
	k, err := testDSAKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPassDSSConfig(t *testing.T) {
	k := dsaKey(t)
	if _, err := New(Config{Auth: []string{AuthPassDSS}, DSAKey: k}); err != nil {
		t.Fatalf("valid key refused: %v", err)
	}
	wrong := *k
	wrong.Y = new(big.Int).Add(k.Y, big.NewInt(1))
	for name, key := range map[string]*dsa.PrivateKey{"no key": nil, "mismatched key": &wrong, "empty key": {}} {
		if _, err := New(Config{Auth: []string{AuthPassDSS}, DSAKey: key}); err == nil || !strings.Contains(err.Error(), "DSAKey") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// passdssClient is the client side, written from spec §3.5 inside the test
// to drive the server without package tsp.
type passdssClient struct {
	x, bigX *big.Int
	msg1    []byte
}

func newPassDSSClient(t *testing.T, user string) *passdssClient {
	p := group2()
	x, err := rand.Int(rand.Reader, new(big.Int).Sub(p, big.NewInt(3)))
	if err != nil {
		t.Fatal(err)
	}
	x.Add(x, big.NewInt(2))
	c := &passdssClient{x: x, bigX: new(big.Int).Exp(big.NewInt(2), x, p)}
	c.msg1 = gogocMPInt(wireString(wireString(nil, nil), []byte(user)), c.bigX)
	return c
}

// finish checks msg2 and returns the keys msg3 needs.
func (c *passdssClient) finish(t *testing.T, key *dsa.PrivateKey, reply []byte) (hb, iv, intKey, encKey []byte, layer byte) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(reply)))
	if err != nil {
		t.Fatalf("msg2 is not base64: %q", reply)
	}
	r := wireReader{b: raw}
	blob, err := r.str()
	if err != nil {
		t.Fatal(err)
	}
	y, _ := r.mpint()
	layerBytes, _ := r.bytes(4)
	sigBlob, err := r.str()
	if err != nil || r.len() != 0 {
		t.Fatalf("msg2 layout: %v, %d bytes left", err, r.len())
	}
	if len(blob) < 240 || len(sigBlob) < 59 {
		t.Fatalf("blob %d bytes, signature %d: below the old client's minimum", len(blob), len(sigBlob))
	}
	// The blob is SSH-style: p has a sign byte, which the client must
	// hash as received.
	if !bytes.HasPrefix(blob[11:], []byte{0, 0, 0, 129, 0}) {
		t.Errorf("p in the blob is not SSH-encoded: % x", blob[11:16])
	}
	sr := wireReader{b: sigBlob}
	typ, _ := sr.str()
	rr, _ := sr.mpint()
	ss, err := sr.mpint()
	if string(typ) != "ssh-dss" || err != nil {
		t.Fatalf("signature blob %q %v", typ, err)
	}
	mpK := gogocMPInt(nil, new(big.Int).Exp(y, c.x, group2()))
	hb = append(bytes.Clone(c.msg1), u32be(len(blob))...)
	hb = append(hb, blob...)
	hb = gogocMPInt(hb, y)
	hb = append(hb, layerBytes...)
	h := sha1Sum(hb, mpK)
	if !dsa.Verify(&key.PublicKey, h, rr, ss) {
		t.Fatal("the broker's signature does not verify over H")
	}
	k1 := sha1Sum(mpK, []byte("C"), h)
	return hb, sha1Sum(mpK, []byte("A"), h)[:8], sha1Sum(mpK, []byte("E"), h), append(k1, sha1Sum(mpK, k1)...)[:24], layerBytes[0]
}

// seal builds msg3 from plaintext parts, letting tests break any of them.
func seal(iv, encKey, plain []byte, pad bool) []byte {
	if pad {
		n := des.BlockSize - len(plain)%des.BlockSize
		plain = append(bytes.Clone(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	block, _ := des.NewTripleDESCipher(encKey)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return out
}

func msg3Plain(hb, intKey []byte, layer byte, pass string) []byte {
	j := wireString([]byte{layer, 0, 0, 0}, []byte(pass))
	mac := hmac.New(sha1.New, intKey)
	mac.Write(hb)
	mac.Write(j[:4])
	return mac.Sum(j)
}

func enc64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func TestPassDSSServerChecks(t *testing.T) {
	key := dsaKey(t)
	users := map[string]secret.String{"alice": "secret"}
	type build func(hb, iv, intKey, encKey []byte, layer byte) []byte
	good := func(hb, iv, intKey, encKey []byte, layer byte) []byte {
		return enc64(seal(iv, encKey, msg3Plain(hb, intKey, layer, "secret"), true))
	}
	tests := []struct {
		name string
		msg3 build
		ok   bool
		why  string
	}{
		{"good", good, true, ""},
		{"good with CRLF", func(hb, iv, ik, ek []byte, l byte) []byte { return append(good(hb, iv, ik, ek, l), "\r\n"...) }, true, ""},
		{"wrong password", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, msg3Plain(hb, ik, l, "Secret"), true))
		}, false, "bad user or password"},
		{"tampered ciphertext", func(hb, iv, ik, ek []byte, l byte) []byte {
			c := seal(iv, ek, msg3Plain(hb, ik, l, "secret"), true)
			c[2] ^= 0x80
			return enc64(c)
		}, false, "PASSDSS msg3"},
		{"wrong HMAC key", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, msg3Plain(hb, ek[:20], l, "secret"), true))
		}, false, "integrity check failed"},
		{"HMAC over other data", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, msg3Plain(append(bytes.Clone(hb), 1), ik, l, "secret"), true))
		}, false, "integrity check failed"},
		{"no padding", func(hb, iv, ik, ek []byte, l byte) []byte {
			p := msg3Plain(hb, ik, l, "secret12345") // 8+11+20 = 39 bytes; a 0x00 fills the block
			return enc64(seal(iv, ek, append(p, 0), false))
		}, false, "bad padding"},
		{"security layer not offered", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, msg3Plain(hb, ik, 0x04, "secret"), true))
		}, false, "security layer"},
		{"trailing bytes", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, append(msg3Plain(hb, ik, l, "secret"), 9), true))
		}, false, "not layer, string(passwd), HMAC"},
		{"partial block", func(hb, iv, ik, ek []byte, l byte) []byte {
			return enc64(seal(iv, ek, msg3Plain(hb, ik, l, "secret"), true)[:20])
		}, false, "whole 3DES blocks"},
		{"not base64", func([]byte, []byte, []byte, []byte, byte) []byte { return []byte("*") }, false, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &passdssMech{users: users, key: key}
			if st := m.start(); st.outcome != saslMore || st.reply != nil {
				t.Fatalf("start: %+v", st)
			}
			c := newPassDSSClient(t, "alice")
			st := m.step(enc64(c.msg1))
			if st.outcome != saslMore {
				t.Fatalf("msg1: %+v", st)
			}
			hb, iv, ik, ek, layer := c.finish(t, key, st.reply)
			if layer != passdssLayer {
				t.Fatalf("layer %#x", layer)
			}
			st = m.step(tt.msg3(hb, iv, ik, ek, layer))
			if (st.outcome == saslOK) != tt.ok || !strings.Contains(st.why, tt.why) {
				t.Fatalf("outcome %v why %q, want ok=%v why %q", st.outcome, st.why, tt.ok, tt.why)
			}
			if st.user != "alice" {
				t.Errorf("user %q", st.user)
			}
		})
	}
}

func TestPassDSSServerRefusesMsg1(t *testing.T) {
	key := dsaKey(t)
	p := group2()
	for name, msg := range map[string][]byte{
		"X = 1":          gogocMPInt(wireString(wireString(nil, nil), []byte("alice")), big.NewInt(1)),
		"X = p-1":        gogocMPInt(wireString(wireString(nil, nil), []byte("alice")), new(big.Int).Sub(p, big.NewInt(1))),
		"trailing":       append(gogocMPInt(wireString(wireString(nil, nil), []byte("alice")), big.NewInt(5)), 0),
		"other azname":   gogocMPInt(wireString(wireString(nil, []byte("bob")), []byte("alice")), big.NewInt(5)),
		"truncated":      wireString(nil, nil),
		"not base64 raw": nil,
	} {
		m := &passdssMech{users: map[string]secret.String{"alice": "x"}, key: key}
		in := enc64(msg)
		if msg == nil {
			in = []byte("%%%%")
		}
		if st := m.step(in); st.outcome != saslFail || st.why == "" || st.reply != nil {
			t.Errorf("%s: %+v", name, st)
		}
	}
}

// Over TCP msg1 and msg3 have no line end (spec §1.4): the reader must
// find their end from their structure, however the bytes are cut.
func TestPassDSSTCPFraming(t *testing.T) {
	key := dsaKey(t)
	m := &passdssMech{users: map[string]secret.String{"alice": "secret"}, key: key}
	c := newPassDSSClient(t, "alice")
	text := enc64(c.msg1)

	pr, pw := io.Pipe()
	rr := newRecordReader(pr)
	go func() {
		// NUL (the AUTHENTICATE terminator) first, then three bytes at a time.
		stream := append([]byte{0}, text...)
		for len(stream) > 0 {
			n := min(3, len(stream))
			if _, err := pw.Write(stream[:n]); err != nil {
				return
			}
			stream = stream[n:]
		}
	}()
	got, err := rr.nextBase64(m.complete)
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("msg1: %q %v", got, err)
	}
	st := m.step(got)
	if st.outcome != saslMore {
		t.Fatalf("msg1: %+v", st)
	}
	hb, iv, ik, ek, layer := c.finish(t, key, st.reply)
	for _, pass := range []string{"secret", "", strings.Repeat("p", 100)} {
		m3 := enc64(seal(iv, ek, msg3Plain(hb, ik, layer, pass), true))
		// A buffered CRLF behind it is eaten; the next record stays whole.
		rr := newRecordReader(bytes.NewReader(append(bytes.Clone(m3), "\r\nVERSION=2.0.2\r\n"...)))
		saved := *m
		got, err := rr.nextBase64(saved.complete)
		if err != nil || !bytes.Equal(got, m3) {
			t.Fatalf("msg3 (%d-byte password): %q %v", len(pass), got, err)
		}
		if next, err := rr.next(); err != nil || string(next) != "VERSION=2.0.2\r\n" {
			t.Fatalf("record after msg3: %q %v", next, err)
		}
	}
	// A length that cannot be a password ends the read at once.
	bogus := enc64(seal(iv, ek, []byte{1, 0, 0, 0, 0x7f, 0, 0, 0}, false))
	rr = newRecordReader(bytes.NewReader(append(bogus, "AAAA"...)))
	if got, err := rr.nextBase64(m.complete); err != nil || !bytes.Equal(got, bogus) {
		t.Fatalf("bogus msg3: %q %v", got, err)
	}
}

// The whole exchange over a real TCP socket, written the way gogoc writes
// it: command and msg1 back to back, no line ends after msg1 and msg3.
func TestPassDSSOverTCPSocket(t *testing.T) {
	key := dsaKey(t)
	s, _, tcp := startServer(t, Config{Auth: []string{AuthPassDSS}, DSAKey: key, Users: map[string]string{"alice": "secret"}})
	conn, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	line := func() []byte {
		l, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if _, err := conn.Write([]byte("VERSION=2.0.2\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(line()); got != "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=PASSDSS-3DES-1\r\n" {
		t.Fatalf("capability %q", got)
	}
	c := newPassDSSClient(t, "alice")
	if _, err := conn.Write(append([]byte("AUTHENTICATE PASSDSS-3DES-1\r\n\x00"), enc64(c.msg1)...)); err != nil {
		t.Fatal(err)
	}
	hb, iv, ik, ek, layer := c.finish(t, key, line())
	m3 := enc64(seal(iv, ek, msg3Plain(hb, ik, layer, "secret"), true))
	for _, part := range [][]byte{m3[:5], m3[5:]} {
		if _, err := conn.Write(part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := string(line()); got != "200 Success\r\n" {
		t.Fatalf("final %q", got)
	}
	if st := s.Stats(); st.AuthFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// FuzzPassDSSServer feeds arbitrary msg1 and msg3 to the server side. It
// must never panic, and since the fuzzer cannot know the session keys, it
// must never accept a msg3.
func FuzzPassDSSServer(f *testing.F) {
	x := new(big.Int).Exp(big.NewInt(2), big.NewInt(123456789), group2())
	f.Add(enc64(gogocMPInt(wireString(wireString(nil, nil), []byte("alice")), x)), []byte("AAAAAAAAAAA="))
	f.Add([]byte("AAAA"), []byte(""))
	f.Fuzz(func(t *testing.T, msg1, msg3 []byte) {
		key, err := testDSAKey()
		if err != nil {
			t.Fatal(err)
		}
		m := &passdssMech{users: map[string]secret.String{"alice": "secret"}, key: key}
		_, _ = m.complete(msg1)
		st := m.step(msg1)
		if st.outcome != saslMore {
			if st.outcome != saslFail || st.reply != nil {
				t.Fatalf("msg1: %+v", st)
			}
			return
		}
		_, _ = m.complete(msg3)
		if st := m.step(msg3); st.outcome != saslFail {
			t.Fatalf("msg3 accepted without the keys: %+v", st)
		}
	})
}
