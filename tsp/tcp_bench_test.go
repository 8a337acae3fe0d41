package tsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// rescanNext is recordReader.next as it was until the redirect loop was
// made linear: after each line it searched the whole record so far for
// </tunnel>, so a redirect of n short lines cost O(n²). Kept as the
// benchmark's baseline and the equivalence fuzzer's reference.
func rescanNext(rr *recordReader) ([]byte, error) {
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
		rec := line
		for !bytes.Contains(rec, tunnelEndTag) {
			if rec, err = rr.line(rec, rr.limit); err != nil {
				return nil, fmt.Errorf("reading redirect: %w", noEOF(err))
			}
		}
		return rec, nil
	}
	return line, nil
}

// oneByteLineRedirect is a redirect record of limit bytes: the status
// line, then one-byte lines (a bare LF each), then </tunnel>.
func oneByteLineRedirect(limit int) []byte {
	head, tail := "1200 Redirect\r\n", "</tunnel>\r\n"
	return []byte(head + strings.Repeat("\n", limit-len(head)-len(tail)) + tail)
}

// BenchmarkTCPRedirectOneByteLines reads a 64 KiB redirect record of
// one-byte lines (MaxMessage, the most a broker may send) with the old
// rescanning reader and with today's, in the same run.
func BenchmarkTCPRedirectOneByteLines(b *testing.B) {
	rec := oneByteLineRedirect(MaxMessage)
	for _, impl := range []struct {
		name string
		next func(*recordReader) ([]byte, error)
	}{
		{"baseline-rescan", rescanNext},
		{"linear", (*recordReader).next},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			r := bytes.NewReader(rec)
			br := bufio.NewReader(r)
			for b.Loop() {
				r.Reset(rec)
				br.Reset(r)
				rr := recordReader{br: br, limit: MaxMessage}
				got, err := impl.next(&rr)
				if err != nil || len(got) != len(rec) {
					b.Fatalf("%d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// FuzzTCPRecordLinear: the linear reader cuts every stream exactly as the
// rescanning one did, records and errors alike.
func FuzzTCPRecordLinear(f *testing.F) {
	f.Add([]byte(tcpRedirectRecord + "200 Success\r\n"))
	f.Add([]byte("1200 Redirect </tunnel>\r\n1201 x\n</tun\nnel>\n</tunnel>\n"))
	f.Add(oneByteLineRedirect(200))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, limit := range []int{MaxMessage, 64} {
			a := recordReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16), limit: limit}
			b := recordReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16), limit: limit}
			for i := 0; i <= len(data); i++ {
				got, gerr := a.next()
				want, werr := rescanNext(&b)
				if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
					t.Fatalf("record %d: got %q, %v; want %q, %v", i, got, gerr, want, werr)
				}
				if gerr != nil {
					if !errors.Is(gerr, io.EOF) && !errors.Is(gerr, io.ErrUnexpectedEOF) && !errors.Is(gerr, ErrMalformed) {
						t.Fatalf("unexpected error %v", gerr)
					}
					break
				}
			}
		}
	})
}
