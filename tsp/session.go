package tsp

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jsklein/gogoc/internal/hostname"
	"github.com/jsklein/gogoc/internal/logx"
)

// versionOrder is the order the old client falls back through (spec §2.4);
// unexported so no importer can change it for every session.
var versionOrder = [...]string{"2.0.2", "2.0.1", "2.0.0", "1.0.1"}

// Session runs one negotiation on one transport: VERSION, CAPABILITY,
// AUTHENTICATE, tunnel request, offer; then Accept or Reject.
type Session struct {
	T       Transport
	Version string // "2.0.2" when empty
	Creds   Credentials
	Request Request
	// CNonce overrides the DIGEST-MD5 client nonce (tests, golden vectors).
	CNonce func() string
	Log    *logx.Logger

	// Filled in by Negotiate.
	Capability Capability
	Mechanism  string
	Offer      *Offer
}

func (s *Session) version() string {
	if s.Version == "" {
		return versionOrder[0]
	}
	return s.Version
}

func (s *Session) log() *logx.Logger {
	if s.Log == nil {
		return logx.Discard()
	}
	return s.Log
}

// Negotiate runs the session up to a validated offer. Broker statuses come
// back as *StatusError or *RedirectError, refusals of broker input as
// *ProtocolError. The transport stays open for Accept or Reject.
func (s *Session) Negotiate(ctx context.Context) (*Offer, error) {
	o, err := s.negotiate(ctx)
	var rd *RedirectError
	if errors.As(err, &rd) {
		// Any phase may redirect; the targets pass the address policy here.
		rd.viaLoopback = s.sameHost()
		if perr := checkRedirect(rd, rd.viaLoopback); perr != nil {
			return nil, perr
		}
	}
	return o, err
}

// sameHost: the broker was reached at a loopback address, so it runs on
// this host (see policy.go).
func (s *Session) sameHost() bool { return s.T.RemoteAddr().Addr().Unmap().IsLoopback() }

func (s *Session) negotiate(ctx context.Context) (*Offer, error) {
	s.Version = s.version()
	log := s.log().With("broker", s.T.RemoteAddr().String(), "transport", string(s.T.Network()), "version", s.Version)
	reply, err := s.T.Exchange(ctx, []byte("VERSION="+s.Version+"\r\n"))
	if err != nil {
		return nil, fmt.Errorf("tsp version: %w", err)
	}
	if s.Capability, err = ParseCapability(reply); err != nil {
		return nil, err
	}
	log.Debug("broker capability", "capability", s.Capability.String())
	if !s.Capability.Supports(s.Request.Type) {
		return nil, fmt.Errorf("%w: requested %s, broker offers %s", ErrTunnelModeUnavailable, s.Request.Type, s.Capability)
	}
	if s.Mechanism, err = chooseMechanism(s.Creds.Method, s.Capability); err != nil {
		return nil, err
	}
	if err := s.authenticate(ctx, s.Mechanism); err != nil {
		return nil, err
	}
	log.Debug("authenticated", "mechanism", s.Mechanism)

	client := s.Request.ClientV4
	if s.Request.Type == V4V6 {
		client = s.Request.ClientV6
	}
	if !client.IsValid() { // "auto": the source address of this connection (spec §12.2)
		client = s.T.LocalAddr().Addr()
	}
	req, err := MarshalRequest(s.Request, client)
	if err != nil {
		return nil, err
	}
	reply, err = s.T.Exchange(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("tsp tunnel request: %w", err)
	}
	body, err := s.readContent(ctx, reply)
	if err != nil {
		return nil, err
	}
	if err := checkStatus("tunnel", body); err != nil {
		return nil, err
	}
	_, xmlPart, _ := bytes.Cut(body, []byte("\n"))
	if s.Offer, err = ParseOffer(xmlPart, s.Request, s.T.Network(), s.T.RemoteAddr().Addr()); err != nil {
		// Tell the broker we will not use it; best effort only.
		_ = s.Reject(ctx)
		return nil, err
	}
	log.Info("tunnel offered", "type", s.Offer.Type, "client", s.Offer.ClientV6, "prefix", s.Offer.Prefix)
	return s.Offer, nil
}

// readContent assembles a Content-length framed reply (spec §4.4) and
// returns the body: the status line and what follows. A bare status line
// (tsps sends "310 …" unframed) is returned as is so it can be reported.
func (s *Session) readContent(ctx context.Context, msg []byte) ([]byte, error) {
	const phase = "tunnel"
	header, body, ok := bytes.Cut(msg, []byte("\n"))
	if !ok || !hasPrefixFold(header, "Content-length:") {
		if isStatusReply(msg) {
			return msg, nil
		}
		return nil, malformed(phase, "expected Content-length, got %s", quoteSnippet(msg))
	}
	v := bytes.TrimSpace(header[len("Content-length:"):])
	n, err := parseUint(string(v), MaxMessage)
	if err != nil || n == 0 {
		return nil, malformed(phase, "Content-length %s invalid (want 1..%d)", quoteSnippet(v), MaxMessage)
	}
	out := append(make([]byte, 0, n), body...)
	for uint64(len(out)) < n {
		more, err := s.T.Receive(ctx)
		if err != nil {
			return nil, fmt.Errorf("tsp tunnel reply (%d of %d bytes): %w", len(out), n, err)
		}
		if len(more) == 0 {
			return nil, malformed(phase, "empty continuation after %d of %d bytes", len(out), n)
		}
		out = append(out, more...)
	}
	if uint64(len(out)) > n {
		return nil, malformed(phase, "reply body of %d bytes exceeds Content-length %d", len(out), n)
	}
	return out, nil
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// Accept confirms the offer. Version 1.0.1 has no accept message (spec §2.1).
func (s *Session) Accept(ctx context.Context) error {
	if s.Version == "1.0.1" {
		return nil
	}
	if err := s.T.Send(ctx, acceptMsg); err != nil {
		return fmt.Errorf("tsp accept: %w", err)
	}
	return nil
}

// Reject declines the offer so the broker can release it at once.
func (s *Session) Reject(ctx context.Context) error {
	if s.Version == "1.0.1" {
		return nil
	}
	if err := s.T.Send(ctx, rejectMsg); err != nil {
		return fmt.Errorf("tsp reject: %w", err)
	}
	return nil
}

// ParseServer splits a server string of the forms host, host:port, [v6],
// [v6]:port (spec §1.1) into host and port (3653 by default), with the
// host-name rule the configuration applies too (internal/hostname). Unlike
// the old client it explains an unbracketed IPv6 literal instead of
// misparsing it.
func ParseServer(s string) (host string, port uint16, err error) {
	host, port, err = hostname.SplitServer(s, defaultPort)
	if err != nil {
		return "", 0, fmt.Errorf("server: %w", err)
	}
	return host, port, nil
}
