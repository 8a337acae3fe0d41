package logx

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// syslogQueue is how many lines wait for the syslog socket: enough for a
// burst while logd is busy, little RAM.
const syslogQueue = 64

// syslogWriteTimeout bounds one write to the socket; the writer gives up
// on a line after two.
const syslogWriteTimeout = 100 * time.Millisecond

// syslogConn writes RFC 3164 lines to the local syslog socket (OpenWrt's
// logd and every Linux syslogd listen on /dev/log) from its own goroutine,
// reconnecting after an error so that a restarted logd is picked up.
//
// A logger only queues the line: a syslog that stopped reading must not
// stall every goroutine that logs. When the queue is full, or a line
// cannot be written, the line is dropped and counted; the other
// destinations are told once when dropping starts, and syslog gets the
// count as soon as it takes lines again.
type syslogConn struct {
	addr     string
	facility int
	tag      string
	now      func() time.Time
	// notify writes a warning to the other destinations. It is called
	// from the writer goroutine, or from send outside the core's lock.
	notify func(msg string)

	queue chan string
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	dropped  *atomic.Uint64 // the Logger's count of lines it could not write
	pending  atomic.Uint64  // dropped and not yet reported to syslog
	dropping atomic.Bool    // the other destinations were told

	conn net.Conn // the writer goroutine's alone
}

func newSyslog(addr string, fac int, tag string, now func() time.Time, notify func(string), dropped *atomic.Uint64) *syslogConn {
	s := &syslogConn{
		addr: addr, facility: fac, tag: tag, now: now, notify: notify, dropped: dropped,
		queue: make(chan string, syslogQueue),
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// send queues msg without waiting.
func (s *syslogConn) send(sev int, msg string) {
	line := s.datagram(sev, msg)
	select {
	case <-s.done:
		return
	default:
	}
	select {
	case s.queue <- line:
	default:
		s.drop("the syslog queue is full")
	}
}

func (s *syslogConn) datagram(sev int, msg string) string {
	return "<" + strconv.Itoa(s.facility*8+sev) + ">" + s.now().Format(time.Stamp) + " " +
		s.tag + "[" + strconv.Itoa(os.Getpid()) + "]: " + msg
}

func (s *syslogConn) drop(why string) {
	s.dropped.Add(1)
	s.pending.Add(1)
	if s.dropping.CompareAndSwap(false, true) && s.notify != nil {
		s.notify("syslog " + s.addr + " is not taking lines (" + why + "); dropping them until it does")
	}
}

func (s *syslogConn) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			if s.conn != nil {
				_ = s.conn.Close()
			}
			return
		case line := <-s.queue:
			s.deliver(line)
		}
	}
}

// deliver writes one line, first the count of the lines dropped before it.
func (s *syslogConn) deliver(line string) {
	if n := s.pending.Load(); n > 0 {
		note := s.datagram(4, fmt.Sprintf("%d log lines were dropped: syslog was not taking them", n))
		if !s.write(note) {
			s.drop("write failed")
			return
		}
		s.pending.Add(-n)
		if s.dropping.CompareAndSwap(true, false) && s.notify != nil {
			s.notify(fmt.Sprintf("syslog %s takes lines again; %d were dropped", s.addr, n))
		}
	}
	if !s.write(line) {
		s.drop("write failed")
	}
}

// write tries the line twice, redialling in between; a full socket is
// given syslogWriteTimeout each time.
func (s *syslogConn) write(line string) bool {
	for range 2 {
		if s.conn == nil {
			c, err := net.Dial("unixgram", s.addr)
			if err != nil {
				return false
			}
			s.conn = c
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(syslogWriteTimeout))
		if _, err := s.conn.Write([]byte(line)); err == nil {
			return true
		}
		_ = s.conn.Close()
		s.conn = nil
	}
	return false
}

// close stops the writer; lines still queued are dropped. It waits for the
// writer, so it must not be called with a lock notify takes.
func (s *syslogConn) close() error {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
	return nil
}
