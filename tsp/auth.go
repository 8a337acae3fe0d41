package tsp

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Mechanism names on the wire.
const (
	mechAnonymous = "ANONYMOUS"
	mechPlain     = "PLAIN"
	mechDigestMD5 = "DIGEST-MD5"
	mechPassDSS   = "PASSDSS-3DES-1"
)

// chooseMechanism applies spec §3.1, with one deliberate difference from
// gogoc 1.2: "any" takes PASSDSS-3DES-1, then DIGEST-MD5, and never PLAIN
// (1.2 fell back to PLAIN, sending the password in clear to any broker, or
// anyone on the path, that announced nothing better). PLAIN is used only
// when configured as "plain". "any" never takes ANONYMOUS either.
func chooseMechanism(m AuthMethod, caps Capability) (string, error) {
	want := map[AuthMethod]struct {
		bit  Capability
		name string
	}{
		AuthAnonymous: {CapAnonymous, mechAnonymous},
		AuthPlain:     {CapPlain, mechPlain},
		AuthDigestMD5: {CapDigestMD5, mechDigestMD5},
		AuthPassDSS:   {CapPassDSS, mechPassDSS},
	}
	if m == AuthAny {
		for _, c := range []AuthMethod{AuthPassDSS, AuthDigestMD5} {
			if caps&want[c].bit != 0 {
				return want[c].name, nil
			}
		}
		hint := ""
		if caps&CapPlain != 0 {
			hint = "; any never sends the password in clear: set auth_method plain to allow PLAIN with this broker"
		}
		return "", fmt.Errorf("%w: auth_method any accepts %s or %s, broker offers %s%s", ErrNoCommonAuth, mechPassDSS, mechDigestMD5, caps.authString(), hint)
	}
	w, ok := want[m]
	if !ok {
		return "", fmt.Errorf("tsp auth: unknown method %q", m)
	}
	if caps&w.bit == 0 {
		return "", fmt.Errorf("%w: configured %s, broker offers %s", ErrNoCommonAuth, m, caps)
	}
	return w.name, nil
}

// authCommand is the AUTHENTICATE line, NUL included as the old client sends it.
func authCommand(mech string) []byte {
	return []byte("AUTHENTICATE " + mech + "\r\n\x00")
}

func (s *Session) authenticate(ctx context.Context, mech string) error {
	switch mech {
	case mechAnonymous:
		reply, err := s.T.Exchange(ctx, authCommand(mech))
		if err != nil {
			return fmt.Errorf("tsp auth anonymous: %w", err)
		}
		return checkStatus("auth", reply)
	case mechPlain:
		return s.authPlain(ctx)
	case mechDigestMD5:
		return s.authDigest(ctx)
	case mechPassDSS:
		return s.authPassDSS(ctx)
	}
	return fmt.Errorf("tsp auth: mechanism %s not implemented", mech)
}

func (s *Session) authPlain(ctx context.Context) error {
	user, pass := s.Creds.UserID, s.Creds.Password.Reveal()
	if strings.ContainsAny(user+pass, "\x00\r\n") {
		return fmt.Errorf("tsp auth plain: user id or password contains NUL, CR or LF")
	}
	if err := s.T.Send(ctx, authCommand(mechPlain)); err != nil {
		return fmt.Errorf("tsp auth plain: %w", err)
	}
	msg := make([]byte, 0, len(user)+len(pass)+4)
	msg = append(append(append(append(msg, 0), user...), 0), pass...)
	msg = append(msg, "\r\n"...)
	reply, err := s.T.Exchange(ctx, msg)
	clear(msg)
	if err != nil {
		return fmt.Errorf("tsp auth plain: %w", err)
	}
	return checkStatus("auth", reply)
}

// digestChallenge holds the fields of a DIGEST-MD5 challenge we use.
type digestChallenge struct {
	realm, nonce, qop, charset string
}

// isStatusReply tells a status line from a base64 blob: base64 of ASCII
// text never starts with a digit, a status line always does.
func isStatusReply(b []byte) bool { return len(b) > 0 && b[0] >= '0' && b[0] <= '9' }

func (s *Session) authDigest(ctx context.Context) error {
	const phase = "auth"
	reply, err := s.T.Exchange(ctx, authCommand(mechDigestMD5))
	if err != nil {
		return fmt.Errorf("tsp auth digest-md5: %w", err)
	}
	if isStatusReply(reply) {
		if err := checkStatus(phase, reply); err != nil {
			return err
		}
		return malformed(phase, "status 200 where a DIGEST-MD5 challenge was expected")
	}
	fields, err := decodeSASL(phase, reply)
	if err != nil {
		return err
	}
	ch := digestChallenge{realm: fields["realm"], nonce: fields["nonce"], qop: fields["qop"], charset: fields["charset"]}
	if ch.nonce == "" {
		return malformed(phase, "DIGEST-MD5 challenge without a nonce")
	}
	if ch.qop == "" {
		ch.qop = "auth"
	} else if !containsToken(ch.qop, "auth") {
		return malformed(phase, "DIGEST-MD5 challenge offers qop %s, only auth is supported", quoteSnippet([]byte(ch.qop)))
	} else {
		ch.qop = "auth"
	}
	cnonce := s.cnonce()
	line, rspauth := digestResponse(s.Creds.UserID, s.Creds.Password.Reveal(), "tsp/"+s.Creds.Server, cnonce, ch, s.bug1455())
	if len(line) > 1023 {
		return fmt.Errorf("tsp auth digest-md5: response of %d bytes exceeds the 1023-byte line", len(line))
	}
	msg := base64.StdEncoding.AppendEncode(nil, line)
	msg = append(msg, "\r\n"...)
	reply, err = s.T.Exchange(ctx, msg)
	if err != nil {
		return fmt.Errorf("tsp auth digest-md5: %w", err)
	}
	if isStatusReply(reply) {
		if err := checkStatus(phase, reply); err != nil {
			return err
		}
		return malformed(phase, "status 200 where the DIGEST-MD5 server proof was expected")
	}
	proof, err := decodeSASL(phase, reply)
	if err != nil {
		return err
	}
	got := proof["rspauth"]
	if len(got) < 32 || subtle.ConstantTimeCompare([]byte(strings.ToLower(got[:32])), []byte(rspauth)) != 1 {
		return fmt.Errorf("tsp auth digest-md5: %w", ErrBadServerProof)
	}
	// The final status comes on its own: a poll over UDP, the next line on TCP.
	final, err := s.T.Receive(ctx)
	if err != nil {
		return fmt.Errorf("tsp auth digest-md5: final status: %w", err)
	}
	return checkStatus(phase, final)
}

// bug1455 reports whether the old A1 truncation applies (spec §3.4): only
// with versions 2.0.0 and 1.0.1, whose brokers expect it.
func (s *Session) bug1455() bool { return s.Version == "2.0.0" || s.Version == "1.0.1" }

func (s *Session) cnonce() string {
	if s.CNonce != nil {
		return s.CNonce()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// digestResponse builds the client response line and the rspauth the broker
// must prove with (spec §3.4). Neither is ever logged.
func digestResponse(user, pass, digestURI, cnonce string, ch digestChallenge, bug1455 bool) (line []byte, rspauth string) {
	hURP := md5.Sum([]byte(user + ":" + ch.realm + ":" + pass))
	var a1 []byte
	if i := bytes.IndexByte(hURP[:], 0); bug1455 && i >= 0 {
		a1 = append(a1, hURP[:i]...)
	} else {
		a1 = append(append(a1, hURP[:]...), ":"+ch.nonce+":"+cnonce...)
	}
	ha1 := md5hex(a1)
	kd := func(a2 string) string {
		return md5hex([]byte(ha1 + ":" + ch.nonce + ":00000001:" + cnonce + ":" + ch.qop + ":" + md5hex([]byte(a2))))
	}
	response := kd("AUTHENTICATE:" + digestURI)
	rspauth = kd(":" + digestURI)
	escUser := quoteEscape(user)
	var b strings.Builder
	if ch.charset != "" {
		b.WriteString("charset=" + ch.charset + ",")
	}
	fmt.Fprintf(&b, `username="%s",realm="%s",nonce="%s",nc=00000001,cnonce="%s",digest-uri="%s",response=%s,qop=auth`,
		escUser, ch.realm, ch.nonce, cnonce, digestURI, response)
	return []byte(b.String()), rspauth
}

// quoteEscape escapes what a quoted-string cannot hold as it is: a
// backslash and a double quote (RFC 2831 §7.2). A loop rather than
// strings.NewReplacer, whose machinery costs the router binary some 4 KB
// compressed for these two characters.
func quoteEscape(s string) string {
	b := make([]byte, 0, len(s)+2)
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '"' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func md5hex(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

// decodeSASL base64-decodes the first line of a SASL blob and splits it into
// key=value fields. Unlike the old client it respects quotes, so a quoted
// list such as qop="auth,auth-int" stays one value.
func decodeSASL(phase string, msg []byte) (map[string]string, error) {
	line, _, _ := bytes.Cut(msg, []byte("\n"))
	line = bytes.TrimRight(line, "\r\x00 ")
	raw, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil {
		return nil, malformed(phase, "SASL blob is not base64: %v", err)
	}
	if !printable(raw) {
		return nil, malformed(phase, "SASL blob is not printable text")
	}
	fields := map[string]string{}
	for len(raw) > 0 {
		var kv []byte
		kv, raw = splitQuoted(raw)
		k, v, ok := bytes.Cut(bytes.TrimSpace(kv), []byte("="))
		if !ok || len(k) == 0 {
			continue
		}
		v = bytes.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if bytes.ContainsAny(v, `"\`) {
			return nil, malformed(phase, "SASL field %s carries quotes or backslashes", quoteSnippet(k))
		}
		fields[strings.ToLower(string(k))] = string(v)
	}
	return fields, nil
}

// splitQuoted returns the text up to the first comma outside quotes.
func splitQuoted(b []byte) (field, rest []byte) {
	inQuote := false
	for i, c := range b {
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func containsToken(list, tok string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimSpace(t) == tok {
			return true
		}
	}
	return false
}
