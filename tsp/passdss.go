package tsp

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/des"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA signatures (spec §3.5); keys are only verified here, never made.
	"crypto/dsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// PASSDSS-3DES-1 refusals. The key errors are the knownkeys ones; every
// PASSDSS refusal also matches ErrAuthFailed, as the old client reports
// them all as an authentication failure (spec §3.5).
var (
	ErrServerKeyUnknown   = knownkeys.ErrUnknownKey
	ErrServerKeyChanged   = knownkeys.ErrKeyChanged
	ErrBadServerSignature = errors.New("broker's PASSDSS signature does not verify")
)

// oakleyGroup2 is the RFC 2409 Second Oakley Group prime (1024-bit MODP),
// generator 2: the only Diffie-Hellman group PASSDSS-3DES-1 uses.
const oakleyGroup2 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381" +
	"FFFFFFFFFFFFFFFF"

// dhPrime parses the group prime afresh, so no shared *big.Int exists for
// anyone to modify.
func dhPrime() *big.Int {
	p, _ := new(big.Int).SetString(oakleyGroup2, 16)
	return p
}

// Sanity bounds the old client applies to msg2 (spec §3.5 step 3).
const (
	passdssMinKeyBlob = 240
	passdssMinSig     = 59
)

// passdssMsg2 is the broker's reply to msg1 (spec §3.5 step 3).
type passdssMsg2 struct {
	keyBlob []byte // raw, as received: it is hashed as is
	key     knownkeys.Key
	y       *big.Int // the broker's DH public value
	layer   [4]byte  // ssecmask and the 3-byte sbuflen, raw
	r, s    *big.Int // the DSA signature
}

// decodePassDSSMsg2 base64-decodes a reply line and parses it. Unlike the
// old client it allows a line ending and refuses trailing bytes.
func decodePassDSSMsg2(reply []byte) (*passdssMsg2, error) {
	line := bytes.TrimRight(reply, "\r\n\x00 ")
	raw, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(string(line)); err != nil {
			return nil, malformed("auth", "PASSDSS msg2 is not base64")
		}
	}
	return parsePassDSSMsg2(raw)
}

func parsePassDSSMsg2(b []byte) (*passdssMsg2, error) {
	bad := func(what string, err error) error {
		if err != nil {
			return malformed("auth", "PASSDSS msg2: %s: %v", what, err)
		}
		return malformed("auth", "PASSDSS msg2: %s", what)
	}
	r := knownkeys.NewReader(b)
	pkLen, err := r.Uint32()
	if err != nil {
		return nil, bad("key length", err)
	}
	if pkLen < passdssMinKeyBlob {
		return nil, bad(fmt.Sprintf("key blob of %d bytes, at least %d expected", pkLen, passdssMinKeyBlob), nil)
	}
	if int64(pkLen) > int64(r.Len()) {
		return nil, bad(fmt.Sprintf("key blob of %d bytes but %d left", pkLen, r.Len()), nil)
	}
	m := &passdssMsg2{}
	m.keyBlob, _ = r.Bytes(int(pkLen))
	if m.key, err = knownkeys.ParseBlob(m.keyBlob); err != nil {
		return nil, bad("key blob", err)
	}
	if m.y, err = r.MPInt(); err != nil {
		return nil, bad("DH value", err)
	}
	layer, err := r.Bytes(4)
	if err != nil {
		return nil, bad("security layer", err)
	}
	copy(m.layer[:], layer)
	sigLen, err := r.Uint32()
	if err != nil {
		return nil, bad("signature length", err)
	}
	if sigLen < passdssMinSig {
		return nil, bad(fmt.Sprintf("signature of %d bytes, at least %d expected", sigLen, passdssMinSig), nil)
	}
	if int64(sigLen) != int64(r.Len()) {
		return nil, bad(fmt.Sprintf("signature of %d bytes but %d left", sigLen, r.Len()), nil)
	}
	sig := knownkeys.NewReader(r.Rest())
	typ, err := sig.ReadString()
	if err != nil || string(typ) != knownkeys.KeyType {
		return nil, bad("signature type is not "+knownkeys.KeyType, err)
	}
	if m.r, err = sig.MPInt(); err != nil {
		return nil, bad("signature r", err)
	}
	if m.s, err = sig.MPInt(); err != nil {
		return nil, bad("signature s", err)
	}
	if sig.Len() != 0 {
		return nil, bad(fmt.Sprintf("%d bytes after the signature", sig.Len()), nil)
	}
	return m, nil
}

// passdssKeys are the client-to-server keys (spec §3.5 step 8). The
// server-to-client ones are not needed: no security layer is used.
type passdssKeys struct {
	iv     []byte // 8
	intKey []byte // 20, HMAC-SHA1
	encKey []byte // 24, 3DES-EDE
}

func derivePassDSSKeys(mpK, h []byte) passdssKeys {
	sum := func(parts ...[]byte) []byte {
		d := sha1.New()
		for _, p := range parts {
			d.Write(p)
		}
		return d.Sum(nil)
	}
	k1 := sum(mpK, []byte("C"), h)
	k2 := sum(mpK, k1)
	enc := append(k1, k2...)[:24]
	clear(k2)
	return passdssKeys{iv: sum(mpK, []byte("A"), h)[:8], intKey: sum(mpK, []byte("E"), h), encKey: enc}
}

func (k passdssKeys) wipe() { clear(k.iv); clear(k.intKey); clear(k.encKey) }

// sealPassDSSMsg3 builds C = 3DES-EDE-CBC(EncKey, IV, PKCS#7(J || L)) with
// J = layer[0] 00 00 00 || string(passwd) and L = HMAC-SHA1(IntKey, HB ||
// J[0:4]) (spec §3.5 steps 9-11).
func sealPassDSSMsg3(k passdssKeys, hb []byte, layer byte, passwd string) ([]byte, error) {
	// One buffer, sized up front, so that no copy of the password is left
	// behind by a reallocation; it is wiped on the way out.
	m := make([]byte, 0, 8+len(passwd)+sha1.Size+des.BlockSize)
	defer func() { clear(m[:cap(m)]) }()
	m = knownkeys.AppendString(append(m, layer, 0, 0, 0), []byte(passwd))
	mac := hmac.New(sha1.New, k.intKey)
	mac.Write(hb)
	mac.Write(m[:4])
	m = mac.Sum(m)
	pad := des.BlockSize - len(m)%des.BlockSize
	for range pad {
		m = append(m, byte(pad))
	}
	block, err := des.NewTripleDESCipher(k.encKey)
	if err != nil {
		return nil, fmt.Errorf("tsp auth passdss: %w", err)
	}
	c := make([]byte, len(m))
	cipher.NewCBCEncrypter(block, k.iv).CryptBlocks(c, m)
	return c, nil
}

func appendMPInt(b []byte, n *big.Int) []byte { return knownkeys.AppendMPInt(b, n) }

// authPassDSS runs PASSDSS-3DES-1 (spec §3.5). Neither the password, the
// shared secret nor any derived key reaches a log or an error.
func (s *Session) authPassDSS(ctx context.Context) error {
	const phase = "auth"
	fail := func(err error) error { return fmt.Errorf("tsp auth passdss: %w: %w", err, ErrAuthFailed) }
	if err := s.T.Send(ctx, authCommand(mechPassDSS)); err != nil {
		return fmt.Errorf("tsp auth passdss: %w", err)
	}
	p := dhPrime()
	random := s.Creds.dhRand
	if random == nil {
		random = rand.Reader
	}
	x, err := rand.Int(random, new(big.Int).Sub(p, big.NewInt(3)))
	if err != nil {
		return fmt.Errorf("tsp auth passdss: %w", err)
	}
	x.Add(x, big.NewInt(2)) // x in [2, p-2]
	defer x.SetInt64(0)
	bigX := new(big.Int).Exp(big.NewInt(2), x, p)

	// msg1 = string(azname "") || string(userid) || mpint(X); its bytes
	// start the hash buffer HB.
	hb := knownkeys.AppendString(nil, nil)
	hb = knownkeys.AppendString(hb, []byte(s.Creds.UserID))
	hb = appendMPInt(hb, bigX)
	reply, err := s.T.Exchange(ctx, base64.StdEncoding.AppendEncode(nil, hb))
	if err != nil {
		return fmt.Errorf("tsp auth passdss: %w", err)
	}
	if isStatusReply(reply) { // base64 of msg2 starts with 'A'; a status is the broker refusing
		if err := checkStatus(phase, reply); err != nil {
			return err
		}
		return malformed(phase, "status 200 where PASSDSS msg2 was expected")
	}
	m2, err := decodePassDSSMsg2(reply)
	if err != nil {
		return err
	}
	hb = binary.BigEndian.AppendUint32(hb, uint32(len(m2.keyBlob)))
	hb = append(hb, m2.keyBlob...)
	hb = appendMPInt(hb, m2.y) // re-encoded: a sign byte from the broker is dropped
	hb = append(hb, m2.layer[:]...)

	// The known-key check comes before the signature (spec §3.5 step 4);
	// a newly trusted key is only written once the signature holds.
	if err := m2.key.Validate(); err != nil {
		return fail(malformed(phase, "PASSDSS broker key unusable: %v", err))
	}
	fp := m2.key.Fingerprint()
	s.log().Debug("PASSDSS broker key", "broker", s.Creds.Server, "key", fp)
	commit, err := knownkeys.Checker{Path: s.Creds.KnownKeys, Policy: s.Creds.KeyPolicy, Prompt: s.Creds.KeyPrompt, Log: s.Log}.Check(s.Creds.Server, m2.key)
	if err != nil {
		if errors.Is(err, knownkeys.ErrUnknownKey) || errors.Is(err, knownkeys.ErrKeyChanged) {
			return fail(err)
		}
		return fmt.Errorf("tsp auth passdss: %w", err) // the file itself, or the policy value
	}

	one := big.NewInt(1)
	if m2.y.Cmp(one) <= 0 || m2.y.Cmp(new(big.Int).Sub(p, one)) >= 0 {
		return fail(malformed(phase, "PASSDSS broker DH value out of range"))
	}
	k := new(big.Int).Exp(m2.y, x, p)
	mpK := appendMPInt(nil, k)
	k.SetInt64(0)
	defer clear(mpK)
	hsum := sha1.New()
	hsum.Write(hb)
	hsum.Write(mpK)
	h := hsum.Sum(nil)

	pub := dsa.PublicKey{Parameters: dsa.Parameters{P: m2.key.P, Q: m2.key.Q, G: m2.key.G}, Y: m2.key.Y}
	if !dsa.Verify(&pub, h, m2.r, m2.s) {
		return fail(fmt.Errorf("%w (broker %s, key %s)", ErrBadServerSignature, s.Creds.Server, fp))
	}
	if err := commit(); err != nil {
		return fmt.Errorf("tsp auth passdss: storing the broker key: %w", err)
	}

	keys := derivePassDSSKeys(mpK, h)
	defer keys.wipe()
	c, err := sealPassDSSMsg3(keys, hb, m2.layer[0], s.Creds.Password.Reveal())
	if err != nil {
		return err
	}
	reply, err = s.T.Exchange(ctx, base64.StdEncoding.AppendEncode(nil, c))
	if err != nil {
		return fmt.Errorf("tsp auth passdss: %w", err)
	}
	return checkStatus(phase, reply)
}
