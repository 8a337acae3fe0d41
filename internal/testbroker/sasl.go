package testbroker

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jsklein/gogoc/internal/secret"
)

// saslOutcome says where an authentication exchange stands after one step.
type saslOutcome int

const (
	saslMore  saslOutcome = iota // send reply, wait for the client's next message
	saslOK                       // authenticated: send reply (if any) then 200
	saslProof                    // authenticated: send reply (the server proof) now, 200 afterwards (spec §3.4 step 6)
	saslFail                     // send 300 and end the session
)

type saslStep struct {
	reply   []byte
	outcome saslOutcome
	user    string
	why     string // for the log; never holds a secret
}

// saslMech is the server side of one mechanism. start answers the
// AUTHENTICATE command, step each further client message.
type saslMech interface {
	start() saslStep
	step(msg []byte) saslStep
}

// newMech builds a mechanism for one session. PASSDSS-3DES-1's msg1 and
// msg3 carry no line end over TCP (spec §1.4); it is a framer, which the
// TCP reader asks where they stop.
func newMech(name string, st *settings, f *Faults, version, nonce string) saslMech {
	users, realm := st.users, st.realm
	switch name {
	case AuthPassDSS:
		return &passdssMech{users: users, key: st.dsaKey, badSig: f.BadSignature}
	case AuthAnonymous:
		return anonymousMech{}
	case AuthPlain:
		return &plainMech{users: users}
	case AuthDigestMD5:
		return &digestMech{users: users, realm: realm, version: version, nonce: nonce}
	}
	return nil
}

type anonymousMech struct{}

func (anonymousMech) start() saslStep { return saslStep{outcome: saslOK} }
func (anonymousMech) step([]byte) saslStep {
	return saslStep{outcome: saslFail, why: "unexpected message"}
}

// plainMech: the command gets an empty ack, then "NUL user NUL pass CRLF".
type plainMech struct {
	users map[string]secret.String
}

func (*plainMech) start() saslStep { return saslStep{outcome: saslMore} }

func (m *plainMech) step(msg []byte) saslStep {
	user, pass, err := parsePlain(msg)
	if err != nil {
		return saslStep{outcome: saslFail, why: err.Error()}
	}
	want, ok := m.users[user]
	// Compare even for an unknown user, so that timing says nothing.
	match := subtle.ConstantTimeCompare([]byte(pass), []byte(want.Reveal())) == 1
	if !ok || !match {
		return saslStep{outcome: saslFail, user: user, why: "bad user or password"}
	}
	return saslStep{outcome: saslOK, user: user}
}

// parsePlain reads [authzid] NUL authcid NUL passwd. Leading NULs are
// dropped first: over TCP the NUL after "AUTHENTICATE PLAIN\r\n" runs into
// the credentials' own leading NUL.
func parsePlain(msg []byte) (user, pass string, err error) {
	msg = bytes.TrimLeft(trimLine(msg), "\x00")
	parts := strings.Split(string(msg), "\x00")
	switch len(parts) {
	case 2:
		user, pass = parts[0], parts[1]
	case 3:
		if parts[0] != parts[1] {
			return "", "", errors.New("PLAIN authzid differs from the user")
		}
		user, pass = parts[1], parts[2]
	default:
		return "", "", errors.New("PLAIN credentials are not NUL user NUL password")
	}
	if user == "" {
		return "", "", errors.New("PLAIN credentials have an empty user")
	}
	return user, pass, nil
}

// digestMech is TSP's DIGEST-MD5 (spec §3.4).
type digestMech struct {
	users   map[string]secret.String
	realm   string
	version string
	nonce   string
}

func (m *digestMech) start() saslStep {
	challenge := fmt.Sprintf(`realm="%s",nonce="%s",qop=auth,algorithm=md5-sess,charset=utf8`, m.realm, m.nonce)
	return saslStep{outcome: saslMore, reply: b64Line(challenge)}
}

func (m *digestMech) step(msg []byte) saslStep {
	raw, err := decodeB64(msg)
	if err != nil {
		return saslStep{outcome: saslFail, why: "response is not base64"}
	}
	d, err := parseDirectives(string(raw))
	if err != nil {
		return saslStep{outcome: saslFail, why: err.Error()}
	}
	user := d["username"]
	fail := func(why string) saslStep { return saslStep{outcome: saslFail, user: user, why: why} }
	for _, k := range []string{"username", "realm", "nonce", "nc", "cnonce", "digest-uri", "response"} {
		if _, ok := d[k]; !ok {
			return fail("response has no " + k)
		}
	}
	switch {
	case d["realm"] != m.realm:
		return fail(fmt.Sprintf("realm %q, want %q", d["realm"], m.realm))
	case d["nonce"] != m.nonce:
		return fail("nonce does not match the challenge")
	case d["nc"] != "00000001":
		return fail(fmt.Sprintf("nc %q, want 00000001", d["nc"]))
	case d["cnonce"] == "":
		return fail("empty cnonce")
	case !strings.HasPrefix(d["digest-uri"], "tsp/") || len(d["digest-uri"]) == len("tsp/"):
		return fail(fmt.Sprintf("digest-uri %q is not tsp/<server>", d["digest-uri"]))
	}
	if q, ok := d["qop"]; ok && q != "auth" {
		return fail(fmt.Sprintf("qop %q, want auth", q))
	}
	pass, ok := m.users[user]
	if !ok {
		return fail("unknown user")
	}
	want, proof := digestHashes(user, m.realm, pass.Reveal(), m.nonce, d["cnonce"], d["digest-uri"], m.version)
	if subtle.ConstantTimeCompare([]byte(d["response"]), []byte(want)) != 1 {
		return fail("wrong response hash")
	}
	return saslStep{outcome: saslProof, user: user, reply: b64Line("rspauth=" + proof)}
}

// digestHashes computes the expected response and the server proof. For
// versions 2.0.0 and 1.0.1 it reproduces gogoc's BUG1455: when
// H(user:realm:pass) holds a zero byte, A1 is only the bytes before it.
func digestHashes(user, realm, pass, nonce, cnonce, uri, version string) (response, rspauth string) {
	h := md5.Sum([]byte(user + ":" + realm + ":" + pass))
	a1 := append(h[:], ":"+nonce+":"+cnonce...)
	if version == "2.0.0" || version == "1.0.1" {
		if i := bytes.IndexByte(h[:], 0); i >= 0 {
			a1 = h[:i]
		}
	}
	ha1 := md5hex(a1)
	tail := ":" + nonce + ":00000001:" + cnonce + ":auth:"
	response = md5hex([]byte(ha1 + tail + md5hex([]byte("AUTHENTICATE:"+uri))))
	rspauth = md5hex([]byte(ha1 + tail + md5hex([]byte(":"+uri))))
	return response, rspauth
}

func md5hex(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

// parseDirectives reads an RFC 2831 directive list: key=value pairs separated
// by commas, values either tokens or quoted strings with backslash escapes.
// Unlike tsps, any character is allowed inside values, and commas inside
// quotes do not split. Keys are case-insensitive; a repeated key is an error.
func parseDirectives(s string) (map[string]string, error) {
	out := make(map[string]string)
	i := 0
	skipBlank := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for {
		skipBlank()
		for i < len(s) && s[i] == ',' { // empty list elements are allowed
			i++
			skipBlank()
		}
		if i >= len(s) {
			return out, nil
		}
		eq := strings.IndexByte(s[i:], '=')
		// Errors name no values: the list holds the response hash, which
		// must not reach the log.
		if eq < 0 {
			return nil, errors.New("a directive has no '='")
		}
		key := strings.ToLower(strings.TrimSpace(s[i : i+eq]))
		if key == "" || len(key) > 32 || strings.ContainsAny(key, ",\" \x00") {
			return nil, errors.New("malformed directive name")
		}
		i += eq + 1
		skipBlank()
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					val.WriteByte(s[i])
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value for %s", key)
			}
			skipBlank()
			if i < len(s) && s[i] != ',' {
				return nil, fmt.Errorf("text after the quoted value of %s", key)
			}
		} else {
			end := strings.IndexByte(s[i:], ',')
			if end < 0 {
				end = len(s) - i
			}
			val.WriteString(strings.TrimSpace(s[i : i+end]))
			i += end
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("directive %s given twice", key)
		}
		out[key] = val.String()
	}
}

func b64Line(s string) []byte {
	return []byte(base64.StdEncoding.EncodeToString([]byte(s)) + "\r\n")
}

// decodeB64 accepts padded or unpadded standard base64 on one line.
func decodeB64(msg []byte) ([]byte, error) {
	t := strings.TrimSpace(string(trimLine(msg)))
	if t == "" {
		return nil, errors.New("empty")
	}
	if b, err := base64.StdEncoding.DecodeString(t); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(t)
}

// newNonce makes the 8 upper-case hex digits tsps uses.
func newNonce() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return fmt.Sprintf("%08X", binary.BigEndian.Uint32(b[:]))
}
