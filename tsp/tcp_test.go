package tsp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair connects a TCPConn to a loopback listener and returns the
// broker's end of the connection.
func tcpPair(t *testing.T, network, addr string, cfg TCPConfig) (*TCPConn, net.Conn) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer l.Close()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := NewTCP(c, cfg)
	t.Cleanup(func() { tc.Close(); s.Close() })
	return tc, s
}

// tcpWriteAsync feeds the broker's side from a goroutine; errors go to t.
func tcpWriteAsync(t *testing.T, s net.Conn, chunks ...string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if _, err := io.WriteString(s, c); err != nil {
				done <- err
				return
			}
			if len(chunks) > 1 {
				time.Sleep(time.Millisecond) // separate segments
			}
		}
		done <- nil
	}()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("broker write: %v", err)
		}
	})
}

const tcpOfferRecord = "Content-length: 144\r\n200 Success\r\n" +
	"<tunnel action=\"info\" type=\"v6udpv4\" lifetime=\"604800\">\r\n" +
	" <server><address type=\"ipv4\">198.51.100.1</address></server>\r\n" +
	"</tunnel>\r\n"

func TestTCPOfferRecordLength(t *testing.T) {
	_, body, _ := strings.Cut(tcpOfferRecord, "\n")
	if len(body) != 144 {
		t.Fatalf("fixture body is %d bytes, header says 144", len(body))
	}
}

func TestTCPContentLengthSplitAcrossWrites(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{})
	var chunks []string
	for rest := tcpOfferRecord + "CAPABILITY TUNNEL=V6V4 AUTH=PLAIN\r\n"; rest != ""; {
		n := min(7, len(rest))
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	tcpWriteAsync(t, s, chunks...)
	got, err := tc.Receive(context.Background())
	if err != nil || string(got) != tcpOfferRecord {
		t.Fatalf("Receive = %q, %v", got, err)
	}
	// Nothing of the next record was swallowed.
	if got, err = tc.Receive(context.Background()); err != nil || string(got) != "CAPABILITY TUNNEL=V6V4 AUTH=PLAIN\r\n" {
		t.Fatalf("second Receive = %q, %v", got, err)
	}
}

const tcpRedirectRecord = "1200 Redirect\r\n" +
	"<tunnel action=\"info\">\r\n" +
	" <broker>\r\n" +
	"  <address type=\"ipv4\">198.51.100.20</address>\r\n" +
	"  <address type=\"ipv6\">2001:db8::20</address>\r\n" +
	" </broker>\r\n" +
	"</tunnel>\r\n"

func TestTCPSeveralRecordsInOneWrite(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{})
	records := []string{
		"CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n",
		tcpOfferRecord,
		"200 Success\r\n",
		tcpRedirectRecord,
		"Content-Length: 13\r\n200 Success\r\n", // capital L tolerated
		"cmVhbG09ImV4YW1wbGUiLG5vbmNlPSIxMjMi\r\n",
		"bare LF line\n",
		"1200 Redirect <tunnel><broker/></tunnel>\r\n", // redirect on one line
	}
	tcpWriteAsync(t, s, strings.Join(records, ""))
	for i, want := range records {
		got, err := tc.Receive(context.Background())
		if err != nil || string(got) != want {
			t.Fatalf("record %d = %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestTCPRspauthAndStatusInOneSegment(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{})
	const response = "dXNlcm5hbWU9InVzZXIiLHJlYWxtPSJleGFtcGxlIg==\r\n"
	go func() {
		buf := make([]byte, len(response))
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != response {
			s.Close()
			return
		}
		io.WriteString(s, "cnNwYXV0aD0wMTIzNDU2Nzg5YWJjZGVm\r\n200 Success\r\n")
	}()
	got, err := tc.Exchange(context.Background(), []byte(response))
	if err != nil || string(got) != "cnNwYXV0aD0wMTIzNDU2Nzg5YWJjZGVm\r\n" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	if got, err = tc.Receive(context.Background()); err != nil || string(got) != "200 Success\r\n" {
		t.Fatalf("Receive = %q, %v", got, err)
	}
}

func TestTCPSendWritesOnly(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: time.Second})
	ctx := context.Background()
	// PLAIN over TCP: two writes back to back, then one read (spec §1.4).
	if err := tc.Send(ctx, []byte("AUTHENTICATE PLAIN\r\n\x00")); err != nil {
		t.Fatal(err)
	}
	if err := tc.Send(ctx, []byte("\x00user\x00pass\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "AUTHENTICATE PLAIN\r\n\x00\x00user\x00pass\r\n"
	buf := make([]byte, len(want))
	s.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != want {
		t.Fatalf("broker read %q, %v", buf, err)
	}
	tcpWriteAsync(t, s, "200 Success\r\n")
	if got, err := tc.Receive(ctx); err != nil || string(got) != "200 Success\r\n" {
		t.Fatalf("Receive = %q, %v", got, err)
	}
}

func TestTCPBadContentLength(t *testing.T) {
	for _, v := range []string{
		"65537", "-5", "abc", "12abc", "+5", "0", "", " ",
		"99999999999999999999999999", "18446744073709551617", "0x10",
	} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 5 * time.Second})
			tcpWriteAsync(t, s, "Content-length: "+v+"\r\n200 Success\r\n")
			start := time.Now()
			_, err := tc.Receive(context.Background())
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want a *ProtocolError", err)
			}
			// Refused as read, not at the 5 s read timeout.
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("refused after %v", d)
			}
			// The stream is out of step now: the connection is dead.
			if _, err := tc.Receive(context.Background()); !errors.Is(err, ErrMalformed) {
				t.Errorf("next Receive: %v, want the earlier error", err)
			}
		})
	}
}

func TestTCPContentLengthAtLimit(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{})
	body := strings.Repeat("x", MaxMessage)
	tcpWriteAsync(t, s, fmt.Sprintf("Content-length: %d\r\n", MaxMessage)+body+"200 Success\r\n")
	got, err := tc.Receive(context.Background())
	if err != nil || len(got) != len("Content-length: 65536\r\n")+MaxMessage {
		t.Fatalf("Receive = %d bytes, %v", len(got), err)
	}
	if got, err = tc.Receive(context.Background()); err != nil || string(got) != "200 Success\r\n" {
		t.Fatalf("next Receive = %q, %v", got, err)
	}
}

func TestTCPLineTooLong(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 5 * time.Second})
	// No line end, connection kept open: the reader must stop at the limit
	// instead of waiting or buffering on.
	tcpWriteAsync(t, s, strings.Repeat("A", MaxMessage+100))
	start := time.Now()
	_, err := tc.Receive(context.Background())
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	// Refused at the limit, not at the 5 s read timeout.
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("refused after %v", d)
	}
}

func TestTCPRedirectTooLong(t *testing.T) {
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 5 * time.Second})
	line := " <address type=\"dn\">broker.example.net</address>\r\n"
	tcpWriteAsync(t, s, "1200 Redirect\r\n<tunnel action=\"info\">\r\n"+strings.Repeat(line, MaxMessage/len(line)+1))
	if _, err := tc.Receive(context.Background()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestTCPTruncatedRecords(t *testing.T) {
	for name, stream := range map[string]string{
		"content-length body": "Content-length: 50\r\n200 Success\r\n",
		"redirect":            "1200 Redirect\r\n<tunnel>\r\n <broker>\r\n",
		"line":                "200 Succ",
	} {
		t.Run(name, func(t *testing.T) {
			tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 5 * time.Second})
			io.WriteString(s, stream)
			s.Close()
			if _, err := tc.Receive(context.Background()); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 5 * time.Second})
	s.Close()
	if _, err := tc.Receive(context.Background()); !errors.Is(err, io.EOF) || errors.Is(err, ErrNoReply) {
		t.Fatalf("clean close: err = %v, want io.EOF", err)
	}
}

func TestTCPReadTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tc, _ := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: timeout})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // guard
	defer cancel()
	start := time.Now()
	_, err := tc.Exchange(ctx, []byte("VERSION=2.0.2\r\n"))
	d := time.Since(start)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if d < timeout-2*time.Millisecond || d > timeout+rudpSlack {
		t.Errorf("timed out after %v, want about %v", d, timeout)
	}
}

// The deadline covers the whole record: a peer trickling bytes cannot hold
// the client past ReadTimeout.
func TestTCPTrickleHitsReadTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	tc, s := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: timeout})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if _, err := s.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // guard
	defer cancel()
	start := time.Now()
	_, err := tc.Receive(ctx)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if d := time.Since(start); d < timeout-2*time.Millisecond || d > timeout+rudpSlack {
		t.Errorf("timed out after %v", d)
	}
}

func TestTCPContextCancel(t *testing.T) {
	tc, _ := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := tc.Receive(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond+rudpSlack {
		t.Errorf("cancel took effect after %v", d)
	}
}

func TestTCPContextDeadline(t *testing.T) {
	tc, _ := tcpPair(t, "tcp4", "127.0.0.1:0", TCPConfig{ReadTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tc.Receive(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 60*time.Millisecond+rudpSlack {
		t.Errorf("deadline took effect after %v", d)
	}
}

func testTCPLoopback(t *testing.T, network, addr string) {
	tc, s := tcpPair(t, network, addr, TCPConfig{})
	go func() {
		br := bufio.NewReader(s)
		if line, err := br.ReadString('\n'); err == nil && line == "VERSION=2.0.2\r\n" {
			io.WriteString(s, "CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS\r\n")
		}
	}()
	got, err := tc.Exchange(context.Background(), []byte("VERSION=2.0.2\r\n"))
	if err != nil || string(got) != "CAPABILITY TUNNEL=V6V4 AUTH=ANONYMOUS\r\n" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	if tc.Network() != TCP {
		t.Errorf("Network = %q", tc.Network())
	}
	if la, want := tc.LocalAddr(), s.RemoteAddr().(*net.TCPAddr).AddrPort(); la != want {
		t.Errorf("LocalAddr = %v, broker sees %v", la, want)
	}
	if ra, want := tc.RemoteAddr(), s.LocalAddr().(*net.TCPAddr).AddrPort(); ra != want {
		t.Errorf("RemoteAddr = %v, want %v", ra, want)
	}
	if network == "tcp4" && !tc.LocalAddr().Addr().Is4() {
		t.Errorf("LocalAddr %v is not plain IPv4", tc.LocalAddr())
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Receive(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close: %v", err)
	}
}

func TestTCPIPv4Loopback(t *testing.T) { testTCPLoopback(t, "tcp4", "127.0.0.1:0") }
func TestTCPIPv6Loopback(t *testing.T) { testTCPLoopback(t, "tcp6", "[::1]:0") }

// tcpRecordsOf runs the record reader over a byte stream and checks the
// invariants every broker input must keep: records are consecutive pieces
// of the stream, bounded in size, and reading always ends.
func tcpRecordsOf(t *testing.T, data []byte, limit int) (recs [][]byte, err error) {
	rr := recordReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16), limit: limit}
	consumed := 0
	for i := 0; ; i++ {
		if i > len(data) {
			t.Fatalf("more records than input bytes: reader does not progress")
		}
		rec, err := rr.next()
		if err != nil {
			return recs, err
		}
		if len(rec) == 0 {
			t.Fatalf("empty record at offset %d", consumed)
		}
		size := len(rec)
		if _, ok := contentLengthValue(rec); ok {
			hdr := bytes.IndexByte(rec, '\n') + 1
			if hdr > limit {
				t.Fatalf("Content-length line of %d bytes over limit %d", hdr, limit)
			}
			size -= hdr
		}
		if size > limit {
			t.Fatalf("record of %d bytes over limit %d", size, limit)
		}
		if !bytes.HasPrefix(data[consumed:], rec) {
			t.Fatalf("record %q is not the next piece of the stream", rec)
		}
		consumed += len(rec)
		recs = append(recs, rec)
	}
}

func TestRecordReaderSmallLimit(t *testing.T) {
	recs, err := tcpRecordsOf(t, []byte("Content-length: 3\r\nabcline\r\n"), 32)
	if err != io.EOF || len(recs) != 2 || string(recs[0]) != "Content-length: 3\r\nabc" || string(recs[1]) != "line\r\n" {
		t.Fatalf("records %q, %v", recs, err)
	}
	if _, err := tcpRecordsOf(t, []byte("Content-length: 33\r\n"), 32); !errors.Is(err, ErrMalformed) {
		t.Fatalf("length over limit: %v", err)
	}
	if _, err := tcpRecordsOf(t, []byte("1200 R\r\n<tunnel>\r\n<broker/>\r\n</tunnel>\r\n"), 32); !errors.Is(err, ErrMalformed) {
		t.Fatalf("redirect over limit: %v", err)
	}
	if _, err := tcpRecordsOf(t, []byte(strings.Repeat("x", 40)), 32); !errors.Is(err, ErrMalformed) {
		t.Fatalf("line over limit: %v", err)
	}
}

func FuzzTCPRecord(f *testing.F) {
	f.Add([]byte(tcpOfferRecord + "CAPABILITY TUNNEL=V6V4 AUTH=PLAIN\r\n"))
	f.Add([]byte(tcpRedirectRecord + "200 Success\r\n"))
	f.Add([]byte("Content-length: -1\r\n"))
	f.Add([]byte("Content-Length: 4\r\n\r\n\r\n1201 x</tunnel>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, limit := range []int{MaxMessage, 32} {
			_, err := tcpRecordsOf(t, data, limit)
			if err == nil {
				t.Fatal("reader ended without an error")
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}
