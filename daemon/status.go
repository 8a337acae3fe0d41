package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
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
// are RFC 3339; empty fields are omitted.
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

// WriteStatus replaces path with s atomically: a reader sees the old file
// or the new one, never a part. The directory is created when missing.
func WriteStatus(path string, s *Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return writeAtomic(path, append(b, '\n'), 0o644)
}

// ReadStatus reads a status file.
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("status file %s: %w", path, err)
	}
	return &s, nil
}

// writeAtomic writes a temporary file beside path and renames it over path.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
