package logx

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// facility maps syslog_facility onto its number.
func facility(name string) (int, error) {
	switch n := strings.ToUpper(name); {
	case n == "" || n == "USER":
		return 1, nil
	case len(n) == 6 && strings.HasPrefix(n, "LOCAL") && n[5] >= '0' && n[5] <= '7':
		return 16 + int(n[5]-'0'), nil
	}
	return 0, fmt.Errorf("syslog facility %q: want USER or LOCAL0..LOCAL7", name)
}

func severity(l Level) int {
	switch {
	case l >= LevelError:
		return 3 // err
	case l >= LevelWarn:
		return 4 // warning
	case l >= LevelInfo:
		return 6 // info
	}
	return 7 // debug
}

// syslogConn writes RFC 3164 lines to the local syslog socket (OpenWrt's
// logd and every Linux syslogd listen on /dev/log), reconnecting after an
// error so that a restarted logd is picked up.
type syslogConn struct {
	addr     string
	facility int
	tag      string
	now      func() time.Time
	conn     net.Conn
}

func (s *syslogConn) write(sev int, msg string) error {
	line := fmt.Sprintf("<%d>%s %s[%d]: %s", s.facility*8+sev, s.now().Format(time.Stamp), s.tag, os.Getpid(), msg)
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			c, err := net.Dial("unixgram", s.addr)
			if err != nil {
				return err
			}
			s.conn = c
		}
		// A full socket must not stall the daemon: drop the line instead.
		_ = s.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := s.conn.Write([]byte(line)); err == nil {
			return nil
		}
		_ = s.conn.Close()
		s.conn = nil
	}
	return fmt.Errorf("syslog %s: write failed", s.addr)
}

func (s *syslogConn) close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
