// Package jsonw writes the few small JSON documents gogoc produces (the
// status file, `gogoc status --json`, `gogoc negotiate` output) without
// encoding/json, whose reflection-driven encoder costs about 0.2 MiB in the
// router binary. Output is byte for byte what encoding/json's Marshal and
// MarshalIndent give for the same values, so readers (LuCI, scripts) see no
// change. Reading is internal/jsonread's job.
package jsonw

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// Writer builds one JSON document value by value. Misuse (a value where a
// key is due, unbalanced ends) and unsupported values (NaN, ±Inf) do not
// panic: the first such error sticks and Bytes returns it.
type Writer struct {
	buf    []byte
	indent string
	stack  []frame
	done   bool // the top-level value is complete
	err    error
}

// frame is one open object or array.
type frame struct {
	object bool
	n      int  // members or elements begun so far
	key    bool // object only: a key is written, its value is due
}

// NewWriter returns a writer that indents nested values with indent per
// level, as encoding/json.MarshalIndent(v, "", indent) does; "" writes
// compact JSON as encoding/json.Marshal does.
func NewWriter(indent string) *Writer {
	return &Writer{indent: indent}
}

// Bytes returns the document, or the first error met while writing it.
func (w *Writer) Bytes() ([]byte, error) {
	switch {
	case w.err != nil:
		return nil, w.err
	case !w.done || len(w.stack) > 0:
		return nil, errors.New("jsonw: document incomplete")
	}
	return w.buf, nil
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *Writer) newline(depth int) {
	if w.indent == "" {
		return
	}
	w.buf = append(w.buf, '\n')
	for range depth {
		w.buf = append(w.buf, w.indent...)
	}
}

// value prepares for a value: a separator and indentation in an array,
// nothing after a key. It reports false (and records why) when no value
// may be written here.
func (w *Writer) value() bool {
	if w.err != nil {
		return false
	}
	if len(w.stack) == 0 {
		if w.done {
			w.fail(errors.New("jsonw: a second top-level value"))
			return false
		}
		w.done = true
		return true
	}
	f := &w.stack[len(w.stack)-1]
	if f.object {
		if !f.key {
			w.fail(errors.New("jsonw: object member without a key"))
			return false
		}
		f.key = false
		return true
	}
	if f.n > 0 {
		w.buf = append(w.buf, ',')
	}
	f.n++
	w.newline(len(w.stack))
	return true
}

// Key begins an object member.
func (w *Writer) Key(name string) {
	if w.err != nil {
		return
	}
	if len(w.stack) == 0 || !w.stack[len(w.stack)-1].object || w.stack[len(w.stack)-1].key {
		w.fail(errors.New("jsonw: key outside an object or where a value is due"))
		return
	}
	f := &w.stack[len(w.stack)-1]
	if f.n > 0 {
		w.buf = append(w.buf, ',')
	}
	f.n++
	f.key = true
	w.newline(len(w.stack))
	w.buf = appendString(w.buf, name)
	w.buf = append(w.buf, ':')
	if w.indent != "" {
		w.buf = append(w.buf, ' ')
	}
}

func (w *Writer) begin(object bool, c byte) {
	if w.value() {
		w.buf = append(w.buf, c)
		w.stack = append(w.stack, frame{object: object})
	}
}

func (w *Writer) end(object bool, c byte) {
	if w.err != nil {
		return
	}
	if len(w.stack) == 0 || w.stack[len(w.stack)-1].object != object || w.stack[len(w.stack)-1].key {
		w.fail(errors.New("jsonw: unbalanced " + string(c)))
		return
	}
	f := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	if f.n > 0 { // empty containers stay "{}" and "[]", as encoding/json writes them
		w.newline(len(w.stack))
	}
	w.buf = append(w.buf, c)
}

// BeginObject opens an object; EndObject closes it.
func (w *Writer) BeginObject() { w.begin(true, '{') }

// EndObject closes the innermost object.
func (w *Writer) EndObject() { w.end(true, '}') }

// BeginArray opens an array; EndArray closes it.
func (w *Writer) BeginArray() { w.begin(false, '[') }

// EndArray closes the innermost array.
func (w *Writer) EndArray() { w.end(false, ']') }

// String writes s as a JSON string.
func (w *Writer) String(s string) {
	if w.value() {
		w.buf = appendString(w.buf, s)
	}
}

// Int writes an integer.
func (w *Writer) Int(i int64) {
	if w.value() {
		w.buf = strconv.AppendInt(w.buf, i, 10)
	}
}

// Uint writes an unsigned integer.
func (w *Writer) Uint(u uint64) {
	if w.value() {
		w.buf = strconv.AppendUint(w.buf, u, 10)
	}
}

// Bool writes true or false.
func (w *Writer) Bool(b bool) {
	if w.value() {
		w.buf = strconv.AppendBool(w.buf, b)
	}
}

// Null writes null.
func (w *Writer) Null() {
	if w.value() {
		w.buf = append(w.buf, "null"...)
	}
}

// Float writes f the way encoding/json writes a float64: the shortest
// decimal that reads back as f, in exponent form only below 1e-6 or from
// 1e21 up. NaN and infinities have no JSON form and are an error.
func (w *Writer) Float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		w.fail(errors.New("jsonw: unsupported value " + strconv.FormatFloat(f, 'g', -1, 64)))
		return
	}
	if !w.value() {
		return
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(w.buf)
	w.buf = strconv.AppendFloat(w.buf, f, format, -1, 64)
	if format == 'e' {
		// "1e-07" → "1e-7", as encoding/json shortens it.
		b := w.buf[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			w.buf = w.buf[:len(w.buf)-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does by default: \" \\ and
// the short escapes \b \f \n \r \t; other control characters, <, > and &
// (HTML-safe output) and U+2028/U+2029 (JavaScript-safe) as \u00XX or
// \u202X; each byte of invalid UTF-8 as \ufffd. Everything else is copied.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
