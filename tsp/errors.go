package tsp

import (
	"errors"
	"fmt"
)

// Status codes a broker sends (spec §2.3). Codes above 1000 are redirects.
const (
	StatusOK              = 200
	StatusAuthFailed      = 300
	StatusNoMoreTunnels   = 301
	StatusBadVersion      = 302
	StatusBadTunnelType   = 303
	StatusServerError     = 310
	StatusInvalidRequest  = 500
	StatusInvalidIPv4     = 501
	StatusInvalidIPv6     = 502
	StatusPrefixInUse     = 506
	StatusPrefixLenUnavai = 507
	StatusDNSDelegation   = 509
	StatusBadPrefixLen    = 518
	StatusMissingPrefix   = 520
	StatusInProgress      = 521
	StatusPrefixAnonymous = 522
	StatusServerBusy      = 530
	StatusRedirect        = 1200
)

// Sentinel errors; a *StatusError matches the one for its code with
// errors.Is, so callers can decide on retry behaviour without parsing text.
var (
	ErrAuthFailed         = errors.New("authentication failed")
	ErrNoMoreTunnels      = errors.New("server reached tunnel capacity")
	ErrUnsupportedVersion = errors.New("unsupported TSP version")
	ErrUnsupportedTunnel  = errors.New("unsupported tunnel type")
	ErrServerError        = errors.New("server-side error")
	ErrInvalidRequest     = errors.New("invalid TSP request")
	ErrInvalidAddress     = errors.New("invalid address")
	ErrPrefixUnavailable  = errors.New("prefix unavailable")
	ErrServerBusy         = errors.New("server too busy")
	ErrRedirect           = errors.New("broker redirect")
	ErrStatus             = errors.New("broker error status")

	// ErrNoCommonAuth: the broker offers none of the mechanisms allowed by
	// the configured auth_method.
	ErrNoCommonAuth = errors.New("no common authentication mechanism")
	// ErrPlainRedirect: a broker redirected a session configured for PLAIN,
	// or the server to negotiate with was named by a redirect (Origin); the
	// redirect is not followed and the server not dialled, so that the
	// password goes in clear only to the broker the operator configured.
	ErrPlainRedirect = errors.New("redirect not followed with auth_method plain")
	// ErrTunnelModeUnavailable: the broker's CAPABILITY lacks the mode.
	ErrTunnelModeUnavailable = errors.New("tunnel mode not offered by broker")
	// ErrMalformed: the broker sent something that breaks the protocol; the
	// wrapping *ProtocolError says what and where.
	ErrMalformed = errors.New("malformed broker message")
	// ErrNoReply: the broker never answered (UDP give-up, TCP read timeout).
	ErrNoReply = errors.New("no reply from broker")
	// ErrTooManyExchanges: an RUDP session would pass sequence 0xF00000FF,
	// which little-endian brokers misread (spec §1.3).
	ErrTooManyExchanges = errors.New("too many exchanges in one RUDP session")
	// ErrBadServerProof: DIGEST-MD5 rspauth did not match.
	ErrBadServerProof = errors.New("server proof (rspauth) mismatch")
)

// StatusError is a non-success status line from the broker.
type StatusError struct {
	Phase string // "capability", "auth", "tunnel", …
	Code  int
	Text  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("tsp %s: broker status %d %s", e.Phase, e.Code, e.Text)
}

// Is maps the code onto the package's sentinel errors.
func (e *StatusError) Is(target error) bool {
	if target == ErrStatus {
		return true
	}
	return statusSentinel(e.Code) == target
}

func statusSentinel(code int) error {
	switch {
	case code == StatusAuthFailed:
		return ErrAuthFailed
	case code == StatusNoMoreTunnels:
		return ErrNoMoreTunnels
	case code == StatusBadVersion:
		return ErrUnsupportedVersion
	case code == StatusBadTunnelType:
		return ErrUnsupportedTunnel
	case code == StatusServerError:
		return ErrServerError
	case code == StatusInvalidRequest:
		return ErrInvalidRequest
	case code == StatusInvalidIPv4, code == StatusInvalidIPv6:
		return ErrInvalidAddress
	case code == StatusPrefixInUse, code == StatusPrefixLenUnavai, code == StatusBadPrefixLen,
		code == StatusMissingPrefix, code == StatusPrefixAnonymous, code == StatusDNSDelegation:
		return ErrPrefixUnavailable
	case code == StatusServerBusy, code == StatusInProgress:
		return ErrServerBusy
	case code > 1000:
		return ErrRedirect
	}
	return nil
}

// ProtocolError describes a broker message the client refuses.
type ProtocolError struct {
	Phase  string
	Reason string
}

func (e *ProtocolError) Error() string { return fmt.Sprintf("tsp %s: %s", e.Phase, e.Reason) }

// Unwrap lets errors.Is(err, ErrMalformed) identify any protocol error.
func (e *ProtocolError) Unwrap() error { return ErrMalformed }

func malformed(phase, format string, args ...any) error {
	return &ProtocolError{Phase: phase, Reason: fmt.Sprintf(format, args...)}
}

// RedirectError carries the broker list of a redirect (status > 1000).
type RedirectError struct {
	Phase   string
	Brokers []Broker
	// viaLoopback: the redirecting broker was reached at a loopback
	// address, so loopback targets are its own (see policy.go).
	viaLoopback bool
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("tsp %s: redirected to %d broker(s)", e.Phase, len(e.Brokers))
}

// Is makes errors.Is(err, ErrRedirect) true.
func (e *RedirectError) Is(target error) bool { return target == ErrRedirect }
