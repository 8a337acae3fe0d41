package tsp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTCPReadTimeout bounds how long one record may take to arrive; the
// old client waited forever (spec §1.2, §14).
const DefaultTCPReadTimeout = 30 * time.Second

// TCPConfig tunes the TCP transport. Zero values select the defaults.
type TCPConfig struct {
	// ReadTimeout is the time one whole record (or one write) may take.
	ReadTimeout time.Duration
}

// TCPConn is the TCP transport. The broker's byte stream is cut into
// records (see recordReader), so coalesced or split segments do not matter.
// Calls are serialised. After a read or write failure the stream position
// is unknown and the connection is dead: later calls fail at once.
type TCPConn struct {
	conn   net.Conn
	cfg    TCPConfig
	closed atomic.Bool

	mu   sync.Mutex // serialises calls; guards rr and dead
	rr   recordReader
	dead error
}

// NewTCP wraps a connected TCP socket.
func NewTCP(conn net.Conn, cfg TCPConfig) *TCPConn {
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultTCPReadTimeout
	}
	return &TCPConn{
		conn: conn,
		cfg:  cfg,
		rr:   recordReader{br: bufio.NewReader(conn), limit: MaxMessage},
	}
}

// Exchange writes msg and reads one record.
func (t *TCPConn) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	release, err := t.begin(ctx, "exchange")
	if err != nil {
		return nil, err
	}
	defer release()
	if err := t.write(ctx, "exchange", msg); err != nil {
		return nil, err
	}
	return t.read(ctx, "exchange")
}

// Send writes msg; nothing is read back (spec §1.2).
func (t *TCPConn) Send(ctx context.Context, msg []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	release, err := t.begin(ctx, "send")
	if err != nil {
		return err
	}
	defer release()
	return t.write(ctx, "send", msg)
}

// Receive reads the next record.
func (t *TCPConn) Receive(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	release, err := t.begin(ctx, "receive")
	if err != nil {
		return nil, err
	}
	defer release()
	return t.read(ctx, "receive")
}

// Network reports TCP.
func (t *TCPConn) Network() Network { return TCP }

// LocalAddr is the socket's local address, IPv4 unmapped.
func (t *TCPConn) LocalAddr() netip.AddrPort { return netAddrPort(t.conn.LocalAddr()) }

// RemoteAddr is the broker's address, IPv4 unmapped.
func (t *TCPConn) RemoteAddr() netip.AddrPort { return netAddrPort(t.conn.RemoteAddr()) }

// Close closes the connection, interrupting a call in progress.
func (t *TCPConn) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := t.conn.Close(); err != nil {
		return fmt.Errorf("tsp tcp: close: %w", err)
	}
	return nil
}

// begin checks that the connection is usable and arms ctx cancellation.
func (t *TCPConn) begin(ctx context.Context, op string) (release func(), err error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("tsp tcp %s: %w", op, net.ErrClosed)
	}
	if t.dead != nil {
		return nil, fmt.Errorf("tsp tcp %s: connection failed earlier: %w", op, t.dead)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tsp tcp %s: %w", op, err)
	}
	return interruptOnDone(ctx, t.conn), nil
}

// deadline is min(ctx deadline, now+ReadTimeout); byCtx tells which won.
func (t *TCPConn) deadline(ctx context.Context) (d time.Time, byCtx bool) {
	d = time.Now().Add(t.cfg.ReadTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd, true
	}
	return d, false
}

func (t *TCPConn) write(ctx context.Context, op string, msg []byte) error {
	d, byCtx := t.deadline(ctx)
	if err := t.conn.SetWriteDeadline(d); err != nil {
		return t.fail(fmt.Errorf("tsp tcp %s: set write deadline: %w", op, err))
	}
	if err := ctx.Err(); err != nil { // see interruptOnDone
		return t.fail(fmt.Errorf("tsp tcp %s: %w", op, err))
	}
	if _, err := t.conn.Write(msg); err != nil {
		return t.fail(t.ioError(ctx, op, "write", byCtx, err))
	}
	return nil
}

func (t *TCPConn) read(ctx context.Context, op string) ([]byte, error) {
	// One deadline for the whole record, so a peer trickling bytes cannot
	// stretch a record past ReadTimeout.
	d, byCtx := t.deadline(ctx)
	if err := t.conn.SetReadDeadline(d); err != nil {
		return nil, t.fail(fmt.Errorf("tsp tcp %s: set read deadline: %w", op, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, t.fail(fmt.Errorf("tsp tcp %s: %w", op, err))
	}
	rec, err := t.rr.next()
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			return nil, t.fail(fmt.Errorf("tsp tcp %s: %w", op, err))
		}
		return nil, t.fail(t.ioError(ctx, op, "read", byCtx, err))
	}
	return rec, nil
}

// ioError classifies a socket error: ctx's end, ErrNoReply for our own
// timeout, or the error itself.
func (t *TCPConn) ioError(ctx context.Context, op, what string, byCtx bool, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("tsp tcp %s: %w", op, cerr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if byCtx { // the socket deadline can beat ctx's own timer by a hair
			return fmt.Errorf("tsp tcp %s: %w", op, context.DeadlineExceeded)
		}
		return fmt.Errorf("tsp tcp %s: %w within %v", op, ErrNoReply, t.cfg.ReadTimeout)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("tsp tcp %s: broker closed the connection: %w", op, err)
	}
	return fmt.Errorf("tsp tcp %s: %s %v: %w", op, what, t.conn.RemoteAddr(), err)
}

func (t *TCPConn) fail(err error) error {
	t.dead = err
	return err
}

// Record framing on TCP (spec §4.4, §5.5, §14).
var (
	contentLengthHdr = "Content-length:"
	tunnelEndTag     = []byte("</tunnel>")
)

// recordReader cuts the broker's byte stream into the messages a UDP
// broker would have sent as one datagram each:
//
//   - a "Content-length: M" line plus exactly M bytes (M in 1..limit);
//   - a redirect: a status line with a code above 1000 and the lines after
//     it up to the one holding "</tunnel>" (at most limit bytes in all);
//   - otherwise one line with its line ending (CAPABILITY, a status line,
//     a base64 SASL blob).
//
// A line may end in LF or CRLF and is at most limit bytes long, so memory
// stays bounded whatever the broker sends; with limit at least the bufio
// size, an overlong line fails as soon as limit bytes are in. Records are
// fresh slices.
type recordReader struct {
	br    *bufio.Reader
	limit int
}

func (rr *recordReader) next() ([]byte, error) {
	line, err := rr.line(nil, rr.limit)
	if err != nil {
		return nil, err
	}
	if v, ok := contentLengthValue(line); ok {
		n, perr := parseContentLength(v, rr.limit)
		if perr != nil {
			return nil, perr
		}
		rec := make([]byte, len(line)+n)
		copy(rec, line)
		if _, err := io.ReadFull(rr.br, rec[len(line):]); err != nil {
			return nil, fmt.Errorf("reading %d-byte Content-length body: %w", n, noEOF(err))
		}
		return rec, nil
	}
	if leadingStatusCode(line) > 1000 {
		// </tunnel> holds no LF, so it lies within one line: only the line
		// just read is searched, keeping a record of many short lines
		// linear (searching the whole record each time was quadratic).
		rec := line
		for start := 0; !bytes.Contains(rec[start:], tunnelEndTag); {
			start = len(rec)
			if rec, err = rr.line(rec, rr.limit); err != nil {
				return nil, fmt.Errorf("reading redirect: %w", noEOF(err))
			}
		}
		return rec, nil
	}
	return line, nil
}

// line appends the next line (through its LF) to rec, failing once rec
// would exceed limit. At a clean end of stream with nothing read it
// returns io.EOF; a final line without LF is io.ErrUnexpectedEOF.
func (rr *recordReader) line(rec []byte, limit int) ([]byte, error) {
	start := len(rec)
	for {
		chunk, err := rr.br.ReadSlice('\n')
		if len(rec)+len(chunk) > limit {
			return nil, malformed("tcp", "line or record longer than %d bytes", limit)
		}
		rec = append(rec, chunk...)
		switch {
		case err == nil:
			return rec, nil
		case errors.Is(err, bufio.ErrBufferFull):
			// Refuse as soon as the limit is reached without a line end,
			// rather than waiting for bytes that could not fit anyway.
			if len(rec) >= limit {
				return nil, malformed("tcp", "line or record longer than %d bytes", limit)
			}
			continue
		case errors.Is(err, io.EOF) && len(rec) > start:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// contentLengthValue returns what follows a Content-length header. The old
// client compares case-sensitively; any capitalisation is tolerated here, as
// in Session.readContent, so both layers frame the same way.
func contentLengthValue(line []byte) ([]byte, bool) {
	if hasPrefixFold(line, contentLengthHdr) {
		return line[len(contentLengthHdr):], true
	}
	return nil, false
}

// parseContentLength accepts decimal digits between optional blanks and
// the line ending, with a value in 1..limit.
func parseContentLength(v []byte, limit int) (int, error) {
	digits := bytes.Trim(v, " \t\r\n")
	if len(digits) == 0 {
		return 0, malformed("tcp", "Content-length without a value")
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, malformed("tcp", "Content-length %q is not a decimal number", digits)
		}
		n = n*10 + int(c-'0')
		if n > limit { // also stops overflow
			return 0, malformed("tcp", "Content-length %q exceeds %d", digits, limit)
		}
	}
	if n == 0 {
		return 0, malformed("tcp", "Content-length is 0")
	}
	return n, nil
}

// noEOF turns an end of stream inside a record into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
