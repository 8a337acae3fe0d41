// Package knownkeys holds the PASSDSS-3DES-1 broker keys a client trusts:
// the "ssh-dss" key blob codec, the known server keys file (spec §3.6) and
// the policy that decides what happens to a key the file does not vouch for.
package knownkeys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// KeyType is the only key type PASSDSS-3DES-1 knows.
const KeyType = "ssh-dss"

// MaxMPIntBytes bounds one number in a blob. The old client gives up above
// 8192 bytes (it exits; this package returns an error).
const MaxMPIntBytes = 8192

// Key is a DSA public key as carried by PASSDSS: domain parameters p, q, g
// and the public value y. Keys compare by value, never by encoding.
type Key struct {
	P, Q, G, Y *big.Int
}

// ErrBlob marks a key blob that cannot be decoded.
var ErrBlob = errors.New("malformed ssh-dss key blob")

// ParseBlob decodes string("ssh-dss") || mpint(p) || mpint(q) || mpint(g) ||
// mpint(y). Numbers are read as unsigned magnitudes, so a sign byte an
// SSH-style encoder may put in front is harmless. Nothing may follow y.
func ParseBlob(b []byte) (Key, error) {
	r := Reader{b: b}
	typ, err := r.ReadString()
	if err != nil {
		return Key{}, fmt.Errorf("%w: key type: %v", ErrBlob, err)
	}
	if string(typ) != KeyType {
		return Key{}, fmt.Errorf("%w: key type %q, want %s", ErrBlob, truncate(typ), KeyType)
	}
	var k Key
	for _, f := range []struct {
		name string
		dst  **big.Int
	}{{"p", &k.P}, {"q", &k.Q}, {"g", &k.G}, {"y", &k.Y}} {
		if *f.dst, err = r.MPInt(); err != nil {
			return Key{}, fmt.Errorf("%w: %s: %v", ErrBlob, f.name, err)
		}
	}
	if r.Len() != 0 {
		return Key{}, fmt.Errorf("%w: %d bytes after y", ErrBlob, r.Len())
	}
	return k, nil
}

// Blob encodes the key the way the old client writes it into the file: the
// numbers as minimal unsigned magnitudes, without a sign byte.
func (k Key) Blob() []byte {
	b := AppendString(nil, []byte(KeyType))
	for _, n := range []*big.Int{k.P, k.Q, k.G, k.Y} {
		b = AppendMPInt(b, n)
	}
	return b
}

// Equal compares the four numbers (spec §3.6: numerically, not as bytes).
func (k Key) Equal(o Key) bool {
	eq := func(a, b *big.Int) bool { return a != nil && b != nil && a.Cmp(b) == 0 }
	return eq(k.P, o.P) && eq(k.Q, o.Q) && eq(k.G, o.G) && eq(k.Y, o.Y)
}

// Fingerprint is "SHA256:" and the unpadded base64 of SHA-256 over Blob,
// the form OpenSSH users know, for logs and the prompt. A key is public, so
// printing it is safe.
func (k Key) Fingerprint() string {
	sum := sha256.Sum256(k.Blob())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Validate checks that the key is usable for DSA verification: p of 1024
// to 8192 bits, q of 160, 224 or 256 bits dividing p-1, and g, y in (1, p).
// It keeps a hostile broker from steering verification into degenerate
// arithmetic; it does not prove p or q prime.
func (k Key) Validate() error {
	if k.P == nil || k.Q == nil || k.G == nil || k.Y == nil {
		return errors.New("dsa key: missing number")
	}
	if n := k.P.BitLen(); n < 1024 || n > 8192 {
		return fmt.Errorf("dsa key: p of %d bits, want 1024..8192", n)
	}
	switch k.Q.BitLen() {
	case 160, 224, 256:
	default:
		return fmt.Errorf("dsa key: q of %d bits, want 160, 224 or 256", k.Q.BitLen())
	}
	pm1 := new(big.Int).Sub(k.P, big.NewInt(1))
	if new(big.Int).Mod(pm1, k.Q).Sign() != 0 {
		return errors.New("dsa key: q does not divide p-1")
	}
	for _, f := range []struct {
		name string
		v    *big.Int
	}{{"g", k.G}, {"y", k.Y}} {
		if f.v.Cmp(big.NewInt(1)) <= 0 || f.v.Cmp(k.P) >= 0 {
			return fmt.Errorf("dsa key: %s out of range (1, p)", f.name)
		}
	}
	return nil
}

// Reader reads the PASSDSS wire encodings (spec §3.5): string is
// u32be(len) || bytes, mpint is u32be(len) || unsigned big-endian bytes.
// Errors say what was short; they never echo the bytes.
type Reader struct {
	b []byte
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the unread bytes.
func (r *Reader) Rest() []byte { return r.b }

// Bytes returns the next n raw bytes.
func (r *Reader) Bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, fmt.Errorf("truncated: need %d bytes, have %d", n, len(r.b))
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

// Uint32 reads a big-endian 32-bit number.
func (r *Reader) Uint32() (uint32, error) {
	b, err := r.Bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// ReadString reads u32be(len) || bytes, len at most MaxMPIntBytes.
func (r *Reader) ReadString() ([]byte, error) {
	n, err := r.Uint32()
	if err != nil {
		return nil, err
	}
	if n > MaxMPIntBytes {
		return nil, fmt.Errorf("length %d exceeds %d", n, MaxMPIntBytes)
	}
	return r.Bytes(int(n))
}

// MPInt reads a number as an unsigned magnitude of at most MaxMPIntBytes.
func (r *Reader) MPInt() (*big.Int, error) {
	b, err := r.ReadString()
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// AppendString appends u32be(len(s)) || s.
func AppendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendMPInt appends n in the old client's encoding: u32be(len) and the
// minimal unsigned big-endian bytes, no sign byte, zero as length 0. This
// is not SSH's mpint; hashes depend on the difference.
func AppendMPInt(b []byte, n *big.Int) []byte {
	return AppendString(b, n.Bytes())
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}
