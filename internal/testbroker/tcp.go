package testbroker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

const (
	// writeTimeout bounds a write to a client that stopped reading.
	writeTimeout = 10 * time.Second
	// chunkPause separates the writes of a chunked reply so that they tend
	// to arrive in separate segments.
	chunkPause = 20 * time.Millisecond
)

var errRecordTooLong = errors.New("record longer than the 4096-byte message limit")

// ServeTCP answers TSP over TCP on l until Close (then it returns
// ErrServerClosed) or an accept error.
func (s *Server) ServeTCP(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.tcp[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.tcp, l)
		s.mu.Unlock()
	}()

	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("testbroker: TCP accept on %s: %w", l.Addr(), err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// serveConn runs one TCP session: one record in, one reply out, until the
// session ends or the connection does.
func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	remote := addrPortOf(conn.RemoteAddr())
	local := addrPortOf(conn.LocalAddr()).Addr()

	s.mu.Lock()
	if !s.admit(remote.Addr()) {
		s.mu.Unlock()
		s.st.log.Warn("session limit reached", "client", remote)
		// Answer the VERSION line with 530 so the client backs off; the
		// short deadline keeps refused connections cheap.
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := newRecordReader(conn).next(); err == nil {
			_, _ = conn.Write(statusLine(stBusy))
		}
		return
	}
	c := s.newSession(TransportTCP, remote, local)
	c.conn = conn
	s.tcpSessions[c] = struct{}{}
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		delete(s.tcpSessions, c)
		s.release(remote.Addr())
		owed := s.retire(c)
		s.mu.Unlock()
		if owed {
			s.notifyClosed([]*Session{c})
		}
	}()

	rr := newRecordReader(conn)
	for {
		s.mu.Lock()
		var fr framer
		if c.state == stateSASL {
			fr, _ = c.mech.(framer)
		}
		deadline := time.Now().Add(s.st.limits.IdleTimeout)
		if c.state == stateEstablished {
			// The client keeps the connection open, silent, for the life
			// of the tunnel (spec §1.2).
			deadline = c.info.Established.Add(time.Duration(c.info.Lifetime) * time.Second)
		}
		s.mu.Unlock()
		if err := conn.SetReadDeadline(deadline); err != nil {
			return
		}
		var rec []byte
		var err error
		if fr != nil {
			rec, err = rr.nextBase64(fr.complete)
		} else {
			rec, err = rr.next()
		}
		if errors.Is(err, errRecordTooLong) {
			s.mu.Lock()
			o := s.fail(c, stBadRequest, err.Error())
			s.mu.Unlock()
			s.writeTCP(c, o.reply, 0)
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.st.log.Debug("tcp read", "session", c.id, "err", err)
			}
			return
		}

		s.mu.Lock()
		o := s.process(c, rec)
		var kicked []*Session
		if o.established {
			kicked = s.establish(c)
		}
		delay := c.faults.Delay
		s.mu.Unlock()

		if o.silent {
			return
		}
		if !s.writeTCP(c, o.reply, delay) {
			return
		}
		for _, part := range o.more {
			if !s.writeTCP(c, part, chunkPause) {
				return
			}
		}
		s.notifyClosed(kicked)
		if o.established {
			s.notifyEstablished(c)
		}
		if o.end {
			return
		}
	}
}

// writeTCP writes b (if any) after delay; false means the connection is
// unusable or the server is closing.
func (s *Server) writeTCP(c *Session, b []byte, delay time.Duration) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return false
		}
	}
	if len(b) == 0 {
		return true
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return false
	}
	if _, err := c.conn.Write(b); err != nil {
		s.st.log.Debug("tcp write", "session", c.id, "err", err)
		return false
	}
	return true
}

// recordReader splits the client's byte stream into the messages of spec
// §1.4: lines ending in LF, except that a Content-length line takes its
// body with it. NUL bytes between records are skipped: they are the
// terminators gogoc sends after AUTHENTICATE lines, and they may arrive
// glued to the next record (AUTHENTICATE PLAIN and its credentials).
type recordReader struct {
	r *bufio.Reader
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, maxMessage)}
}

func (rr *recordReader) next() ([]byte, error) {
	for {
		b, err := rr.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != 0 {
			_ = rr.r.UnreadByte()
			break
		}
	}
	line, err := rr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errRecordTooLong
	}
	if err != nil {
		return nil, err
	}
	rec := bytes.Clone(line)
	if !hasPrefixFold(rec, "Content-length:") {
		return rec, nil
	}
	n, err := strconv.Atoi(strings.Trim(string(rec[len("Content-length:"):]), " \t\r\n"))
	if err != nil || n < 0 {
		return rec, nil // the state machine refuses the bad header
	}
	if n > maxMessage {
		return nil, errRecordTooLong
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rr.r, body); err != nil {
		return nil, err
	}
	return append(rec, body...), nil
}
