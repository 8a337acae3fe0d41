package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/jsklein/gogoc/internal/atomicfile"
	"github.com/jsklein/gogoc/internal/jsonread"
	"github.com/jsklein/gogoc/internal/jsonw"
)

// State is where the supervisor is.
type State string

// The states; Status.State holds one of them.
const (
	StateIdle        State = "idle"
	StateNegotiating State = "negotiating"
	StateUp          State = "up"
	StateLost        State = "lost"
	StateBackoff     State = "backoff"
	StateStopped     State = "stopped"
)

// Status is the status file (contract with LuCI and `gogoc status`). Times
// are RFC 3339; empty fields are omitted. The json tags document the
// contract; MarshalStatus and ReadStatus implement it.
type Status struct {
	State          State      `json:"state"`
	Since          string     `json:"since"`
	PID            int        `json:"pid"`
	Updated        string     `json:"updated"`
	Broker         string     `json:"broker,omitempty"`
	Transport      string     `json:"transport,omitempty"`
	TunnelMode     string     `json:"tunnel_mode,omitempty"`
	DataPlane      string     `json:"data_plane,omitempty"`
	Interface      string     `json:"interface,omitempty"`
	LocalEndpoint  string     `json:"local_endpoint,omitempty"`
	RemoteEndpoint string     `json:"remote_endpoint,omitempty"`
	ClientIPv4     string     `json:"client_ipv4,omitempty"`
	ServerIPv4     string     `json:"server_ipv4,omitempty"`
	ClientIPv6     string     `json:"client_ipv6,omitempty"`
	ServerIPv6     string     `json:"server_ipv6,omitempty"`
	Prefix         string     `json:"prefix,omitempty"`
	LANPrefix      string     `json:"lan_prefix,omitempty"`
	Keepalive      *Keepalive `json:"keepalive,omitempty"`
	Reconnects     uint64     `json:"reconnects"`
	LastError      string     `json:"last_error"`
}

// Keepalive is the keepalive part of Status.
type Keepalive struct {
	IntervalS int     `json:"interval_s"`
	RTTMs     float64 `json:"rtt_ms"`
	Sent      uint64  `json:"sent"`
	Lost      uint64  `json:"lost"`
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ParseStamp reads back what stamp writes: RFC 3339 in UTC, whole seconds
// ("2026-11-23T13:04:05Z"). It is not time.Parse because the layout parser
// is linked for nothing else (about 20 KB of the mips binary).
func ParseStamp(s string) (time.Time, error) {
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("time %q: want YYYY-MM-DDTHH:MM:SSZ", s) }
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return bad()
	}
	var f [6]int
	for i, at := range [6]int{0, 5, 8, 11, 14, 17} {
		width := 2
		if i == 0 {
			width = 4
		}
		for _, c := range s[at : at+width] {
			if c < '0' || c > '9' {
				return bad()
			}
			f[i] = f[i]*10 + int(c-'0')
		}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, time.UTC)
	// time.Date normalises out-of-range fields (Feb 30 → Mar 2); refuse them.
	if t.Year() != f[0] || int(t.Month()) != f[1] || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return bad()
	}
	return t, nil
}

// WriteStatus replaces path with s atomically and durably (atomicfile): a
// reader sees the old file or the new one, never a part. The directory is
// created when missing.
func WriteStatus(path string, s *Status) error {
	b, err := MarshalStatus(s)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

// MarshalStatus renders s as the status file holds it (without the final
// newline): two-space indentation, fields in declaration order, optional
// ones left out when empty. A nil s is null, as encoding/json wrote it.
func MarshalStatus(s *Status) ([]byte, error) {
	w := jsonw.NewWriter("  ")
	if s == nil {
		w.Null()
		return w.Bytes()
	}
	str := func(key, v string) {
		w.Key(key)
		w.String(v)
	}
	opt := func(key, v string) {
		if v != "" {
			str(key, v)
		}
	}
	w.BeginObject()
	str("state", string(s.State))
	str("since", s.Since)
	w.Key("pid")
	w.Int(int64(s.PID))
	str("updated", s.Updated)
	opt("broker", s.Broker)
	opt("transport", s.Transport)
	opt("tunnel_mode", s.TunnelMode)
	opt("data_plane", s.DataPlane)
	opt("interface", s.Interface)
	opt("local_endpoint", s.LocalEndpoint)
	opt("remote_endpoint", s.RemoteEndpoint)
	opt("client_ipv4", s.ClientIPv4)
	opt("server_ipv4", s.ServerIPv4)
	opt("client_ipv6", s.ClientIPv6)
	opt("server_ipv6", s.ServerIPv6)
	opt("prefix", s.Prefix)
	opt("lan_prefix", s.LANPrefix)
	if k := s.Keepalive; k != nil {
		w.Key("keepalive")
		w.BeginObject()
		w.Key("interval_s")
		w.Int(int64(k.IntervalS))
		w.Key("rtt_ms")
		w.Float(k.RTTMs)
		w.Key("sent")
		w.Uint(k.Sent)
		w.Key("lost")
		w.Uint(k.Lost)
		w.EndObject()
	}
	w.Key("reconnects")
	w.Uint(s.Reconnects)
	str("last_error", s.LastError)
	w.EndObject()
	return w.Bytes()
}

// ReadStatus reads a status file. Like encoding/json it matches names
// regardless of case, skips unknown ones and leaves fields given as null
// alone.
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("status file %s: %w", path, err)
	}
	return s, nil
}

func parseStatus(b []byte) (*Status, error) {
	v, err := jsonread.Parse(b)
	if err != nil {
		return nil, err
	}
	var s Status
	members, err := v.Object()
	if err != nil {
		return nil, err
	}
	// The string fields, in the order of the first names below; pid,
	// keepalive and reconnects follow them.
	strs := [...]*string{(*string)(&s.State), &s.Since, &s.Updated, &s.Broker, &s.Transport, &s.TunnelMode, &s.DataPlane,
		&s.Interface, &s.LocalEndpoint, &s.RemoteEndpoint, &s.ClientIPv4, &s.ServerIPv4, &s.ClientIPv6, &s.ServerIPv6,
		&s.Prefix, &s.LANPrefix, &s.LastError}
	for i := range members {
		m := &members[i]
		var err error
		switch f := jsonread.Match(m.Name, "state", "since", "updated", "broker", "transport", "tunnel_mode", "data_plane",
			"interface", "local_endpoint", "remote_endpoint", "client_ipv4", "server_ipv4", "client_ipv6", "server_ipv6",
			"prefix", "lan_prefix", "last_error", "pid", "keepalive", "reconnects"); {
		case f >= 0 && f < len(strs):
			err = m.Value.StoreString(strs[f])
		case f == len(strs):
			err = m.Value.StoreInt(&s.PID)
		case f == len(strs)+1:
			err = parseKeepalive(&m.Value, &s.Keepalive)
		case f == len(strs)+2:
			err = m.Value.StoreUint64(&s.Reconnects)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return &s, nil
}

// parseKeepalive decodes the keepalive member. A second one updates what
// the first filled, as encoding/json does with a pointer already set.
func parseKeepalive(v *jsonread.Value, kp **Keepalive) error {
	if v.Kind == jsonread.Null {
		*kp = nil
		return nil
	}
	members, err := v.Object()
	if err != nil {
		return err
	}
	if *kp == nil {
		*kp = new(Keepalive)
	}
	k := *kp
	for i := range members {
		m := &members[i]
		var err error
		switch jsonread.Match(m.Name, "interval_s", "rtt_ms", "sent", "lost") {
		case 0:
			err = m.Value.StoreInt(&k.IntervalS)
		case 1:
			err = m.Value.StoreFloat64(&k.RTTMs)
		case 2:
			err = m.Value.StoreUint64(&k.Sent)
		case 3:
			err = m.Value.StoreUint64(&k.Lost)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return nil
}
