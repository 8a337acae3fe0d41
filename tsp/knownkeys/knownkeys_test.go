package knownkeys

import (
	"bytes"
	//lint:ignore SA1019 PASSDSS keys are DSA keys; the tests need real ones.
	"crypto/dsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var dsaKeys = sync.OnceValue(func() []Key {
	var params dsa.Parameters
	if err := dsa.GenerateParameters(&params, rand.Reader, dsa.L1024N160); err != nil {
		panic(err)
	}
	var out []Key
	for range 2 {
		k := dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: params}}
		if err := dsa.GenerateKey(&k, rand.Reader); err != nil {
			panic(err)
		}
		out = append(out, Key{P: k.P, Q: k.Q, G: k.G, Y: k.Y})
	}
	return out
})

func keyA() Key { return dsaKeys()[0] }
func keyB() Key { return dsaKeys()[1] }

// sshBlob encodes like an SSH implementation: a 0x00 before a set top bit.
func sshBlob(k Key) []byte {
	b := AppendString(nil, []byte(KeyType))
	for _, n := range []*big.Int{k.P, k.Q, k.G, k.Y} {
		m := n.Bytes()
		if m[0]&0x80 != 0 {
			m = append([]byte{0}, m...)
		}
		b = AppendString(b, m)
	}
	return b
}

func TestBlobEncodingAndNumericCompare(t *testing.T) {
	k := keyA()
	blob := k.Blob()
	// p of a 1024-bit key has its top bit set: the gogoc encoding has no
	// sign byte, so p takes 4+128 bytes right after the 11-byte type.
	if got := blob[11:15]; !bytes.Equal(got, []byte{0, 0, 0, 128}) {
		t.Fatalf("p length % x, want 00 00 00 80 (no sign byte)", got)
	}
	ssh := sshBlob(k)
	if bytes.Equal(ssh, blob) {
		t.Fatal("test is vacuous: both encodings equal")
	}
	parsed, err := ParseBlob(ssh)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Equal(k) || !bytes.Equal(parsed.Blob(), blob) {
		t.Fatal("a sign byte changed the key")
	}
	if parsed.Equal(keyB()) || (Key{}).Equal(k) {
		t.Fatal("different keys compare equal")
	}
	if err := k.Validate(); err != nil {
		t.Fatalf("generated key: %v", err)
	}
	if k.Fingerprint() == keyB().Fingerprint() || !strings.HasPrefix(k.Fingerprint(), "SHA256:") {
		t.Fatalf("fingerprints %s %s", k.Fingerprint(), keyB().Fingerprint())
	}
}

func TestBlobRefusals(t *testing.T) {
	good := keyA().Blob()
	for name, b := range map[string][]byte{
		"empty":      nil,
		"wrong type": append(AppendString(nil, []byte("ssh-rsa")), good[11:]...),
		"truncated":  good[:len(good)-1],
		"trailing":   append(bytes.Clone(good), 0),
		"huge len":   append(AppendString(nil, []byte(KeyType)), 0x7f, 0xff, 0xff, 0xff),
	} {
		if _, err := ParseBlob(b); !errors.Is(err, ErrBlob) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := keyA()
	bad.G = big.NewInt(1)
	if bad.Validate() == nil {
		t.Error("g = 1 validated")
	}
	bad = keyA()
	bad.Q = new(big.Int).Add(bad.Q, big.NewInt(2))
	if bad.Validate() == nil {
		t.Error("q not dividing p-1 validated")
	}
}

func entry(host string, k Key) string { return Entry(host, k) }

func TestFileRoundTrip(t *testing.T) {
	a, b := keyA(), keyB()
	body := "# brokers we trust\n" +
		"\n" +
		entry("broker.example.net", a) + "\n" +
		entry("[2001:db8::1]:3653", b) + " trailing comment\n" +
		"other.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n" +
		"\t  \n" +
		entry("1.2.3.4:3653", a) + "\r\n" +
		entry("broker.example.net", b)
	for _, data := range []string{body, body + "\n", "", "\n", "# only a comment"} {
		f, err := Parse("k.pub", []byte(data))
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if got := f.Bytes(); string(got) != data {
			t.Errorf("round trip changed bytes:\n got %q\nwant %q", got, data)
		}
	}
	f, _ := Parse("k.pub", []byte(body))
	// The last line of a host decides (spec §3.6).
	if k, n, ok := f.Lookup("broker.example.net"); !ok || n != 8 || !k.Equal(b) {
		t.Errorf("broker.example.net: line %d found %v", n, ok)
	}
	if k, n, ok := f.Lookup("[2001:db8::1]:3653"); !ok || n != 4 || !k.Equal(b) {
		t.Errorf("[2001:db8::1]:3653: line %d found %v", n, ok)
	}
	if _, _, ok := f.Lookup("1.2.3.4:3653"); !ok {
		t.Error("CRLF line not found")
	}
	// Hosts compare byte for byte: no port defaulting, no case folding.
	for _, h := range []string{"other.example.net", "1.2.3.4", "BROKER.example.net", "#"} {
		if _, _, ok := f.Lookup(h); ok {
			t.Errorf("%s found", h)
		}
	}
}

func TestFileMalformedLinesReported(t *testing.T) {
	good := entry("ok.example.net", keyA())
	data := strings.Join([]string{
		good,
		"two fields",
		"bad.example.net ssh-dss not*base64",
		good,
		"short.example.net ssh-dss " + base64.StdEncoding.EncodeToString([]byte("xyz")),
		"nul.example.net ssh-dss AAAA\x00",
	}, "\n") + "\n"
	_, err := Parse("/etc/gogoc/gogockeys.pub", []byte(data))
	if !errors.Is(err, ErrMalformedFile) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"gogockeys.pub:2: ", "gogockeys.pub:3: ", "gogockeys.pub:5: ", "gogockeys.pub:6: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "gogockeys.pub:1:") || strings.Contains(err.Error(), "gogockeys.pub:4:") {
		t.Errorf("good line reported:\n%v", err)
	}
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || le.File != "/etc/gogoc/gogockeys.pub" {
		t.Errorf("LineError %+v", le)
	}
}

func TestAddAndSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "keys.pub") // the directory is created
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add("broker.test", keyA()); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := entry("broker.test", keyA()) + "\n"; string(got) != want {
		t.Fatalf("file %q, want %q", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	// A file without a final LF gets one before the new line.
	if err := os.WriteFile(path, []byte("# kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ = Load(path)
	_ = f.Add("b2.test", keyB())
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if want := "# kept\n" + entry("b2.test", keyB()) + "\n"; string(got) != want {
		t.Fatalf("file %q, want %q", got, want)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	for _, h := range []string{"", "a b", "#x", "a\nb"} {
		if f.Add(h, keyA()) == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}

func TestCheckerPolicies(t *testing.T) {
	const host = "broker.test"
	a, b := keyA(), keyB()
	known := entry(host, a) + "\n"
	tests := []struct {
		name    string
		policy  Policy
		file    string // "" = no file
		prompt  Prompt
		present Key
		wantErr error
		stored  bool // commit adds present
	}{
		{"match strict", Strict, known, nil, a, nil, false},
		{"match default policy", "", known, nil, a, nil, false},
		{"unknown strict", Strict, "", nil, a, ErrUnknownKey, false},
		{"unknown strict, other host known", Strict, entry("other.test", a) + "\n", nil, a, ErrUnknownKey, false},
		{"unknown strict, prompt yes", Strict, "", func(string, Key) (bool, error) { return true, nil }, a, nil, true},
		{"unknown strict, prompt no", Strict, "", func(string, Key) (bool, error) { return false, nil }, a, ErrUnknownKey, false},
		{"unknown strict, prompt fails", Strict, "", func(string, Key) (bool, error) { return false, io.EOF }, a, ErrUnknownKey, false},
		{"unknown tofu", TOFU, "", nil, a, nil, true},
		{"unknown accept", Accept, "", nil, a, nil, false},
		{"changed strict", Strict, known, nil, b, ErrKeyChanged, false},
		{"changed tofu", TOFU, known, nil, b, ErrKeyChanged, false},
		{"changed strict, prompt never asked", Strict, known, func(string, Key) (bool, error) { panic("asked") }, b, ErrKeyChanged, false},
		{"changed accept", Accept, known, nil, b, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.pub")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := Checker{Path: path, Policy: tt.policy, Prompt: tt.prompt}
			commit, err := c.Check(host, tt.present)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), tt.present.Fingerprint()) {
					t.Errorf("error does not name host and key: %v", err)
				}
				if tt.wantErr == ErrKeyChanged && !strings.Contains(err.Error(), path+":1") {
					t.Errorf("error does not name the file line: %v", err)
				}
			}
			before, _ := os.ReadFile(path)
			if err == nil {
				if err := commit(); err != nil {
					t.Fatal(err)
				}
			}
			after, _ := os.ReadFile(path)
			if tt.stored {
				if want := tt.file + entry(host, tt.present) + "\n"; string(after) != want {
					t.Fatalf("file %q, want %q", after, want)
				}
			} else if !bytes.Equal(before, after) || string(after) != tt.file {
				t.Fatalf("file changed: %q -> %q", tt.file, after)
			}
		})
	}
}

func TestCheckerFileProblems(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pub")
	if err := os.WriteFile(bad, []byte("x ssh-dss !!!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{Strict, TOFU} {
		if _, err := (Checker{Path: bad, Policy: p}).Check("x", keyA()); !errors.Is(err, ErrMalformedFile) || !strings.Contains(err.Error(), "bad.pub:1:") {
			t.Errorf("%s: %v", p, err)
		}
		if _, err := (Checker{Policy: p}).Check("x", keyA()); err == nil || !strings.Contains(err.Error(), "known_keys") {
			t.Errorf("%s without a file: %v", p, err)
		}
	}
	if _, err := (Checker{Path: bad, Policy: Accept}).Check("x", keyA()); err != nil {
		t.Errorf("accept with a bad file: %v", err)
	}
	if _, err := (Checker{Path: bad, Policy: "yes"}).Check("x", keyA()); err == nil {
		t.Error("unknown policy accepted")
	}
	// A key written by someone else between Check and commit is respected.
	path := filepath.Join(dir, "race.pub")
	commit, err := (Checker{Path: path, Policy: TOFU}).Check("h", keyA())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(entry("h", keyB())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := commit(); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("commit over a newer entry: %v", err)
	}
}
