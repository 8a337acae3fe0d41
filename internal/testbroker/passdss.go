package testbroker

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA signatures (spec §3.5); this is the test broker's side of it.
	"crypto/dsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/jsklein/gogoc/internal/secret"
)

// The server side of PASSDSS-3DES-1 (spec §3.5), written from the spec
// independently of the client in package tsp, so that the end-to-end tests
// compare two readings of it.

// group2P is the RFC 2409 Second Oakley Group prime; the generator is 2.
const group2P = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
	"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
	"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"

func group2() *big.Int {
	p, _ := new(big.Int).SetString(group2P, 16)
	return p
}

const (
	// passdssLayer offers "no security layer" only; the client echoes it.
	passdssLayer = 0x01
	// passdssMaxBuf is the 3-byte sbuflen the server announces.
	passdssMaxBuf = 4096
	// maxPasswd bounds the password length read from msg3.
	maxPasswd = 1024
)

// GenerateDSAKey makes a DSA key for Config.DSAKey (L1024N160, as the old
// brokers used; about 0.1 s).
func GenerateDSAKey() (*dsa.PrivateKey, error) {
	k := new(dsa.PrivateKey)
	if err := dsa.GenerateParameters(&k.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		return nil, fmt.Errorf("testbroker: DSA parameters: %w", err)
	}
	if err := dsa.GenerateKey(k, rand.Reader); err != nil {
		return nil, fmt.Errorf("testbroker: DSA key: %w", err)
	}
	return k, nil
}

// passdssMech runs one session's exchange: msg1 in, msg2 out, msg3 in.
type passdssMech struct {
	users   map[string]secret.String
	key     *dsa.PrivateKey
	badSig  bool // Faults.BadSignature
	gotMsg1 bool
	user    string
	hb      []byte // msg1 || u32(pklen) || blob || mpint(Y) || layer
	iv      []byte
	intKey  []byte
	encKey  []byte
}

func (*passdssMech) start() saslStep { return saslStep{outcome: saslMore} }

func (m *passdssMech) step(msg []byte) saslStep {
	if !m.gotMsg1 {
		return m.onMsg1(msg)
	}
	return m.onMsg3(msg)
}

func (m *passdssMech) onMsg1(msg []byte) saslStep {
	m.gotMsg1 = true
	raw, err := decodeB64(msg)
	if err != nil {
		return saslStep{outcome: saslFail, why: "PASSDSS msg1 is not base64"}
	}
	r := wireReader{b: raw}
	azname, err1 := r.str()
	user, err2 := r.str()
	x, err3 := r.mpint()
	if err := errors.Join(err1, err2, err3); err != nil || r.len() != 0 {
		return saslStep{outcome: saslFail, why: "PASSDSS msg1 is not string, string, mpint"}
	}
	m.user = string(user)
	if len(azname) > 0 && string(azname) != m.user {
		return saslStep{outcome: saslFail, user: m.user, why: "PASSDSS authorization name differs from the user"}
	}
	p := group2()
	one := big.NewInt(1)
	if x.Cmp(one) <= 0 || x.Cmp(new(big.Int).Sub(p, one)) >= 0 {
		return saslStep{outcome: saslFail, user: m.user, why: "PASSDSS client DH value out of range"}
	}
	y, err := rand.Int(rand.Reader, new(big.Int).Sub(p, big.NewInt(3)))
	if err != nil {
		return saslStep{outcome: saslFail, why: "random: " + err.Error()}
	}
	y.Add(y, big.NewInt(2))
	bigY := new(big.Int).Exp(big.NewInt(2), y, p)
	k := new(big.Int).Exp(x, y, p)
	mpK := gogocMPInt(nil, k)

	// The blob and Y go out SSH-style, with a sign byte before a set top
	// bit: the client must hash the blob as received but re-encode Y.
	blob := wireString(nil, []byte("ssh-dss"))
	for _, n := range []*big.Int{m.key.P, m.key.Q, m.key.G, m.key.Y} {
		blob = sshMPInt(blob, n)
	}
	layer := binary.BigEndian.AppendUint32(nil, passdssLayer<<24|passdssMaxBuf)
	m.hb = append(bytes.Clone(raw), u32be(len(blob))...)
	m.hb = append(m.hb, blob...)
	m.hb = gogocMPInt(m.hb, bigY)
	m.hb = append(m.hb, layer...)
	h := sha1Sum(m.hb, mpK)

	signed := h
	if m.badSig {
		signed = sha1Sum(h) // a valid signature, but not over this exchange
	}
	sr, ss, err := dsa.Sign(rand.Reader, m.key, signed)
	if err != nil {
		return saslStep{outcome: saslFail, why: "DSA sign: " + err.Error()}
	}
	// r and s at the full width of q keep the blob at 59 bytes or more,
	// the least the old client accepts.
	qLen := (m.key.Q.BitLen() + 7) / 8
	sig := wireString(nil, []byte("ssh-dss"))
	sig = wireString(sig, sr.FillBytes(make([]byte, qLen)))
	sig = wireString(sig, ss.FillBytes(make([]byte, qLen)))

	out := u32be(len(blob))
	out = append(out, blob...)
	out = sshMPInt(out, bigY)
	out = append(out, layer...)
	out = append(out, u32be(len(sig))...)
	out = append(out, sig...)

	k1 := sha1Sum(mpK, []byte("C"), h)
	m.iv = sha1Sum(mpK, []byte("A"), h)[:8]
	m.intKey = sha1Sum(mpK, []byte("E"), h)
	m.encKey = append(k1, sha1Sum(mpK, k1)...)[:24]
	clear(mpK)
	return saslStep{outcome: saslMore, user: m.user, reply: []byte(base64.StdEncoding.EncodeToString(out) + "\r\n")}
}

func (m *passdssMech) onMsg3(msg []byte) saslStep {
	fail := func(why string) saslStep { return saslStep{outcome: saslFail, user: m.user, why: why} }
	c, err := decodeB64(msg)
	if err != nil {
		return fail("PASSDSS msg3 is not base64")
	}
	plain, err := m.open(c)
	if err != nil {
		return fail("PASSDSS msg3: " + err.Error())
	}
	defer clear(plain)
	// plain = layer 00 00 00 || string(passwd) || HMAC-SHA1 (20 bytes)
	r := wireReader{b: plain}
	head, _ := r.bytes(4)
	pass, err := r.str()
	if err != nil || r.len() != sha1.Size {
		return fail("PASSDSS msg3 is not layer, string(passwd), HMAC")
	}
	mac := hmac.New(sha1.New, m.intKey)
	mac.Write(m.hb)
	mac.Write(head)
	if !hmac.Equal(mac.Sum(nil), r.b) {
		return fail("PASSDSS msg3 integrity check failed")
	}
	if head[0] == 0 || head[0]&^passdssLayer != 0 {
		return fail(fmt.Sprintf("PASSDSS client chose security layer %#02x, offered %#02x", head[0], passdssLayer))
	}
	want, ok := m.users[m.user]
	match := subtle.ConstantTimeCompare(pass, []byte(want.Reveal())) == 1
	if !ok || !match {
		return fail("bad user or password")
	}
	return saslStep{outcome: saslOK, user: m.user}
}

// open decrypts and unpads msg3's ciphertext.
func (m *passdssMech) open(c []byte) ([]byte, error) {
	if len(c) == 0 || len(c)%des.BlockSize != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes is not whole 3DES blocks", len(c))
	}
	block, err := des.NewTripleDESCipher(m.encKey)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(c))
	cipher.NewCBCDecrypter(block, m.iv).CryptBlocks(plain, c)
	n := int(plain[len(plain)-1])
	if n == 0 || n > des.BlockSize || subtle.ConstantTimeCompare(plain[len(plain)-n:], bytes.Repeat([]byte{byte(n)}, n)) != 1 {
		clear(plain)
		return nil, errors.New("bad padding")
	}
	return plain[:len(plain)-n], nil
}

// complete tells the TCP reader whether raw, the base64-decoded bytes read
// so far, is a whole message: over TCP msg1 and msg3 come without a line
// end (spec §1.4), so their own structure must say where they stop.
func (m *passdssMech) complete(raw []byte) (bool, error) {
	if !m.gotMsg1 {
		r := wireReader{b: raw}
		for range 3 {
			if _, err := r.str(); errors.Is(err, errTruncated) {
				return false, nil
			} else if err != nil {
				return false, err
			}
		}
		if r.len() != 0 {
			return false, errors.New("bytes after PASSDSS msg1")
		}
		return true, nil
	}
	// msg3: the first block holds the password length, which fixes the
	// padded size.
	if len(raw) < des.BlockSize {
		return false, nil
	}
	block, err := des.NewTripleDESCipher(m.encKey)
	if err != nil {
		return false, err
	}
	first := make([]byte, des.BlockSize)
	cipher.NewCBCDecrypter(block, m.iv).CryptBlocks(first, raw[:des.BlockSize])
	n := binary.BigEndian.Uint32(first[4:])
	clear(first)
	if n > maxPasswd {
		return false, errors.New("PASSDSS msg3 does not decrypt to a plausible length")
	}
	body := 8 + int(n) + sha1.Size
	total := (body/des.BlockSize + 1) * des.BlockSize
	switch {
	case len(raw) < total:
		return false, nil
	case len(raw) > total:
		return false, errors.New("bytes after PASSDSS msg3")
	}
	return true, nil
}

// framer is a mechanism whose next client message may arrive over TCP
// without a line end; see passdssMech.complete.
type framer interface {
	complete(raw []byte) (bool, error)
}

// nextBase64 reads one unterminated base64 message: four characters at a
// time until complete says the decoded bytes are whole. A line end that is
// already buffered behind it is consumed; waiting for one would deadlock,
// as the client sends nothing more until it has the reply.
func (rr *recordReader) nextBase64(complete func([]byte) (bool, error)) ([]byte, error) {
	for {
		b, err := rr.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != 0 {
			_ = rr.r.UnreadByte()
			break
		}
	}
	var text []byte
	for {
		var quad [4]byte
		for i := range quad {
			c, err := rr.r.ReadByte()
			if err != nil {
				return nil, err
			}
			quad[i] = c
		}
		text = append(text, quad[:]...)
		if len(text) > maxMessage {
			return nil, errRecordTooLong
		}
		raw, err := base64.StdEncoding.DecodeString(string(text))
		if err != nil {
			return text, nil // not base64: the mechanism refuses it
		}
		done, err := complete(raw)
		if err != nil || done || bytes.IndexByte(quad[:], '=') >= 0 {
			if err != nil || !done {
				return text, nil // the mechanism refuses it with a reason
			}
			for rr.r.Buffered() > 0 {
				if c, _ := rr.r.Peek(1); c[0] != '\r' && c[0] != '\n' {
					break
				}
				_, _ = rr.r.ReadByte()
			}
			return text, nil
		}
	}
}

var errTruncated = errors.New("truncated")

// wireReader reads PASSDSS strings and numbers (u32be length first).
type wireReader struct{ b []byte }

func (r *wireReader) len() int { return len(r.b) }

func (r *wireReader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, errTruncated
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *wireReader) str() ([]byte, error) {
	l, err := r.bytes(4)
	if err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l)
	if n > maxMessage {
		return nil, errors.New("length beyond the message limit")
	}
	return r.bytes(int(n))
}

func (r *wireReader) mpint() (*big.Int, error) {
	b, err := r.str()
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

func u32be(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

func wireString(b, s []byte) []byte { return append(append(b, u32be(len(s))...), s...) }

// gogocMPInt is the old client's number encoding: minimal magnitude, no
// sign byte. Hashes use it.
func gogocMPInt(b []byte, n *big.Int) []byte { return wireString(b, n.Bytes()) }

// sshMPInt is SSH's (RFC 4251): a 0x00 in front of a set top bit.
func sshMPInt(b []byte, n *big.Int) []byte {
	m := n.Bytes()
	if len(m) > 0 && m[0]&0x80 != 0 {
		m = append([]byte{0}, m...)
	}
	return wireString(b, m)
}

func sha1Sum(parts ...[]byte) []byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
