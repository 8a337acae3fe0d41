package tsp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// fuzzMsg2 builds a structurally valid msg2 from made-up numbers; it need
// not verify, only parse. The committed corpus also holds real ones.
func fuzzMsg2() []byte {
	n := func(hexs string) *big.Int { v, _ := new(big.Int).SetString(hexs, 16); return v }
	key := knownkeys.Key{P: dhPrime(), Q: n("f0e1d2c3b4a5968778695a4b3c2d1e0f10213243"), G: big.NewInt(2), Y: n(oakleyGroup2[:200])}
	blob := key.Blob()
	out := binary.BigEndian.AppendUint32(nil, uint32(len(blob)))
	out = append(out, blob...)
	out = appendMPInt(out, big.NewInt(0x1234567))
	out = append(out, 1, 0, 0x10, 0)
	sig := knownkeys.AppendString(nil, []byte("ssh-dss"))
	sig = knownkeys.AppendString(sig, bytes.Repeat([]byte{0x11}, 20))
	sig = knownkeys.AppendString(sig, bytes.Repeat([]byte{0x22}, 20))
	out = binary.BigEndian.AppendUint32(out, uint32(len(sig)))
	return append(out, sig...)
}

func FuzzPassDSSMsg2(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(fuzzMsg2()) + "\r\n"))
	f.Add([]byte(base64.RawStdEncoding.EncodeToString(fuzzMsg2())))
	f.Add([]byte("300 Authentication failed\r\n"))
	f.Fuzz(func(t *testing.T, reply []byte) {
		m, err := decodePassDSSMsg2(reply)
		if err != nil {
			if m != nil {
				t.Fatal("message with an error")
			}
			return
		}
		if len(m.keyBlob) < passdssMinKeyBlob || m.y == nil || m.r == nil || m.s == nil {
			t.Fatalf("accepted an incomplete msg2: %+v", m)
		}
		// The key blob is kept raw, and what was parsed from it is what it holds.
		k, err := knownkeys.ParseBlob(m.keyBlob)
		if err != nil || !k.Equal(m.key) {
			t.Fatalf("key blob does not re-parse to the key: %v", err)
		}
		// Re-encoded canonically, the message parses to the same values.
		sig := knownkeys.AppendString(nil, []byte(knownkeys.KeyType))
		sig = appendMPInt(appendMPInt(sig, m.r), m.s)
		out := binary.BigEndian.AppendUint32(nil, uint32(len(m.keyBlob)))
		out = append(out, m.keyBlob...)
		out = appendMPInt(out, m.y)
		out = append(out, m.layer[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(sig)))
		out = append(out, sig...)
		m2, err := parsePassDSSMsg2(out)
		if len(sig) < passdssMinSig {
			return // minimal numbers may shrink the signature below the floor
		}
		if err != nil || m2.y.Cmp(m.y) != 0 || m2.r.Cmp(m.r) != 0 || m2.s.Cmp(m.s) != 0 || m2.layer != m.layer || !m2.key.Equal(m.key) {
			t.Fatalf("canonical re-encoding parses differently: %v", err)
		}
	})
}

func FuzzPassDSSKnownKeys(f *testing.F) {
	n := func(hexs string) *big.Int { v, _ := new(big.Int).SetString(hexs, 16); return v }
	key := knownkeys.Key{P: dhPrime(), Q: n("f0e1d2c3b4a5968778695a4b3c2d1e0f10213243"), G: big.NewInt(2), Y: n("abcdef")}
	f.Add([]byte("# known brokers\n" + knownkeys.Entry("broker.example.net", key) + "\n\n" + knownkeys.Entry("[2001:db8::1]:3653", key) + " comment\r\n"))
	f.Add([]byte("x ssh-rsa AAAA\nno newline at the end"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := knownkeys.Parse("fuzz.pub", data)
		if err != nil {
			return
		}
		if got := file.Bytes(); !bytes.Equal(got, data) {
			t.Fatalf("round trip changed the bytes:\n got %q\nwant %q", got, data)
		}
		if err := file.Add("added.test", key); err != nil {
			t.Fatal(err)
		}
		again, err := knownkeys.Parse("fuzz.pub", file.Bytes())
		if err != nil {
			t.Fatalf("a file with an added entry no longer parses: %v", err)
		}
		if k, _, ok := again.Lookup("added.test"); !ok || !k.Equal(key) {
			t.Fatal("the added entry is not the one found")
		}
	})
}
