package config

import (
	"errors"

	"github.com/jsklein/gogoc/internal/hostname"
)

// SplitServer checks a server string of the forms in spec §1.1 (host,
// host:port, A.B.C.D, A.B.C.D:port, [v6], [v6]:port) and splits it. The
// port is DefaultPort when none is given; the host comes without brackets.
// The syntax and the host-name rule are internal/hostname's, which tsp
// applies too; the length and character limits are the old client's.
func SplitServer(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("empty")
	}
	if len(s) > 1025 {
		return "", 0, errors.New("longer than 1025 characters")
	}
	if err := checkCharset(s, "-.:[]"); err != nil {
		return "", 0, err
	}
	h, p, err := hostname.SplitServer(s, DefaultPort)
	return h, int(p), err
}
