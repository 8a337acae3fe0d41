// Package jsonread reads a JSON document into a small value tree and
// stores its members into Go fields the way encoding/json.Unmarshal would,
// without reflection. gogoc reads one small document (the status file),
// and encoding/json's reflective decoder costs several times this package's
// size in the router binary (scripts/size-jsonread.sh measures it).
//
// Writing is internal/jsonw's job.
package jsonread

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of Value.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "kind " + strconv.Itoa(int(k))
}

// Value is one parsed JSON value.
type Value struct {
	Kind Kind
	Bool bool
	// Text is a String's decoded text, or a Number's literal as written
	// (converted only when its destination type is known, so that no
	// precision is lost on the way).
	Text    string
	Elems   []Value  // Array
	Members []Member // Object, in document order, duplicates kept
}

// Member is one name/value pair of an object.
type Member struct {
	Name  string
	Value Value
}

// MaxDepth bounds nesting so that hostile input cannot exhaust the stack;
// the documents gogoc reads nest two levels.
const MaxDepth = 64

// ErrTooDeep is wrapped by the SyntaxError for input nested deeper than
// MaxDepth.
var ErrTooDeep = errors.New("nested too deeply")

// SyntaxError is malformed input.
type SyntaxError struct {
	Offset int    // bytes from the start of the document
	Msg    string // what was expected
	Found  string // what was there instead
	Err    error  // ErrTooDeep, or nil
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg + ", found " + e.Found
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// Parse reads doc, which must hold exactly one JSON value (RFC 8259)
// surrounded by optional white space. Strings are decoded as
// encoding/json decodes them: invalid UTF-8 and unpaired surrogate escapes
// become U+FFFD.
func Parse(doc []byte) (Value, error) {
	p := parser{doc: doc}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.off < len(p.doc) {
		return Value{}, p.fail("want nothing after the top-level value")
	}
	return v, nil
}

type parser struct {
	doc []byte
	off int
}

// fail reports that msg was expected at the current offset. Messages are
// constants so that the many call sites stay small.
func (p *parser) fail(msg string) error {
	found := "end of input"
	if p.off < len(p.doc) {
		found = strconv.QuoteRuneToASCII(rune(p.doc[p.off]))
		if c := p.doc[p.off]; c >= utf8.RuneSelf {
			found = "byte 0x" + strconv.FormatUint(uint64(c), 16)
		}
	}
	return &SyntaxError{Offset: p.off, Msg: msg, Found: found}
}

func (p *parser) space() {
	for p.off < len(p.doc) {
		switch p.doc[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.off >= len(p.doc) {
		return Value{}, p.fail("want a value")
	}
	switch c := p.doc[p.off]; {
	case c == '{' || c == '[':
		if depth >= MaxDepth {
			err := p.fail("want at most " + strconv.Itoa(MaxDepth) + " levels of nesting")
			err.(*SyntaxError).Err = ErrTooDeep
			return Value{}, err
		}
		if c == '{' {
			return p.object(depth + 1)
		}
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		return Value{Kind: String, Text: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return Value{Kind: Bool, Bool: true}, p.literal("true")
	case c == 'f':
		return Value{Kind: Bool}, p.literal("false")
	case c == 'n':
		return Value{Kind: Null}, p.literal("null")
	}
	return Value{}, p.fail("want a value")
}

func (p *parser) literal(word string) error {
	if len(p.doc)-p.off < len(word) || string(p.doc[p.off:p.off+len(word)]) != word {
		return p.fail("want " + word)
	}
	p.off += len(word)
	return nil
}

func (p *parser) object(depth int) (Value, error) {
	v := Value{Kind: Object}
	p.off++ // '{'
	p.space()
	if p.off < len(p.doc) && p.doc[p.off] == '}' {
		p.off++
		return v, nil
	}
	for {
		if p.off >= len(p.doc) || p.doc[p.off] != '"' {
			return Value{}, p.fail("want an object key")
		}
		name, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.off >= len(p.doc) || p.doc[p.off] != ':' {
			return Value{}, p.fail("want ':' after an object key")
		}
		p.off++
		p.space()
		m, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		v.Members = append(v.Members, Member{Name: name, Value: m})
		p.space()
		if p.off < len(p.doc) {
			switch p.doc[p.off] {
			case ',':
				p.off++
				p.space()
				continue
			case '}':
				p.off++
				return v, nil
			}
		}
		return Value{}, p.fail("want ',' or '}' in an object")
	}
}

func (p *parser) array(depth int) (Value, error) {
	v := Value{Kind: Array}
	p.off++ // '['
	p.space()
	if p.off < len(p.doc) && p.doc[p.off] == ']' {
		p.off++
		return v, nil
	}
	for {
		e, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		v.Elems = append(v.Elems, e)
		p.space()
		if p.off < len(p.doc) {
			switch p.doc[p.off] {
			case ',':
				p.off++
				p.space()
				continue
			case ']':
				p.off++
				return v, nil
			}
		}
		return Value{}, p.fail("want ',' or ']' in an array")
	}
}

// number checks the RFC 8259 grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and keeps the literal.
func (p *parser) number() (Value, error) {
	start := p.off
	digits := func() int {
		n := 0
		for p.off < len(p.doc) && p.doc[p.off] >= '0' && p.doc[p.off] <= '9' {
			p.off++
			n++
		}
		return n
	}
	if p.doc[p.off] == '-' {
		p.off++
	}
	if p.off < len(p.doc) && p.doc[p.off] == '0' {
		p.off++
	} else if digits() == 0 {
		return Value{}, p.fail("want a digit")
	}
	if p.off < len(p.doc) && p.doc[p.off] == '.' {
		p.off++
		if digits() == 0 {
			return Value{}, p.fail("want a digit after the decimal point")
		}
	}
	if p.off < len(p.doc) && (p.doc[p.off] == 'e' || p.doc[p.off] == 'E') {
		p.off++
		if p.off < len(p.doc) && (p.doc[p.off] == '+' || p.doc[p.off] == '-') {
			p.off++
		}
		if digits() == 0 {
			return Value{}, p.fail("want a digit in the exponent")
		}
	}
	return Value{Kind: Number, Text: string(p.doc[start:p.off])}, nil
}

// string decodes a quoted string starting at the opening quote.
func (p *parser) string() (string, error) {
	p.off++ // '"'
	var b strings.Builder
	start := p.off
	for p.off < len(p.doc) {
		c := p.doc[p.off]
		switch {
		case c == '"':
			b.Write(p.doc[start:p.off])
			p.off++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("want no control character in a string")
		case c == '\\':
			b.Write(p.doc[start:p.off])
			if err := p.escape(&b); err != nil {
				return "", err
			}
			start = p.off
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.doc[p.off:])
			if r == utf8.RuneError && size == 1 {
				b.Write(p.doc[start:p.off])
				b.WriteRune(utf8.RuneError)
				start = p.off + 1
			}
			p.off += size
		default:
			p.off++
		}
	}
	return "", p.fail("want '\"' to end the string")
}

// escape decodes one backslash escape at the current offset.
func (p *parser) escape(b *strings.Builder) error {
	if p.off+1 >= len(p.doc) {
		p.off = len(p.doc)
		return p.fail("want an escape after '\\'")
	}
	c := p.doc[p.off+1]
	if short := strings.IndexByte(`"\/bfnrt`, c); short >= 0 {
		b.WriteByte("\"\\/\b\f\n\r\t"[short])
		p.off += 2
		return nil
	}
	if c != 'u' {
		p.off++
		return p.fail("want a valid escape after '\\'")
	}
	r, ok := hex4(p.doc[p.off+2:])
	if !ok {
		p.off += 2
		return p.fail("want four hex digits after \\u")
	}
	p.off += 6
	if utf16.IsSurrogate(r) {
		// A pair is two escapes in a row; a surrogate alone (or a pair
		// in the wrong order) becomes U+FFFD, as in encoding/json.
		if p.off+1 < len(p.doc) && p.doc[p.off] == '\\' && p.doc[p.off+1] == 'u' {
			if r2, ok := hex4(p.doc[p.off+2:]); ok {
				if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
					b.WriteRune(pair)
					p.off += 6
					return nil
				}
			}
		}
		r = utf8.RuneError
	}
	b.WriteRune(r)
	return nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (v *Value) want(kind string) error {
	return errors.New("want " + kind + ", found " + v.Kind.String())
}

// Object returns v's members; a null v has none, as encoding/json leaves a
// struct alone for null.
func (v *Value) Object() ([]Member, error) {
	switch v.Kind {
	case Null, Object:
		return v.Members, nil
	}
	return nil, v.want("an object")
}

// Match returns the index of the first of names that name equals, else of
// the first it equals ignoring case (how encoding/json matches struct
// fields), else -1.
func Match(name string, names ...string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	for i, n := range names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// The Store methods convert v for the destination as encoding/json does
// and store it; null leaves the destination alone.

// StoreString stores a string.
func (v *Value) StoreString(p *string) error {
	switch v.Kind {
	case Null:
	case String:
		*p = v.Text
	default:
		return v.want("a string")
	}
	return nil
}

// StoreInt stores an integer that fits an int; fractions and exponents are
// refused.
func (v *Value) StoreInt(p *int) error {
	n, err := v.integer(strconv.IntSize, true)
	if err == nil && v.Kind == Number {
		*p = int(n)
	}
	return err
}

// StoreUint64 stores a non-negative integer.
func (v *Value) StoreUint64(p *uint64) error {
	n, err := v.integer(64, false)
	if err == nil && v.Kind == Number {
		*p = n
	}
	return err
}

// integer parses a Number as a whole number of bits bits (as uint64 bits
// when signed); null gives 0 and no error.
func (v *Value) integer(bits int, signed bool) (uint64, error) {
	switch v.Kind {
	case Null:
		return 0, nil
	case Number:
	default:
		return 0, v.want("a number")
	}
	var n uint64
	var err error
	if signed {
		var i int64
		i, err = strconv.ParseInt(v.Text, 10, bits)
		n = uint64(i)
	} else {
		n, err = strconv.ParseUint(v.Text, 10, bits)
	}
	if err != nil {
		return 0, errors.New("want a whole number in range, found " + v.Text)
	}
	return n, nil
}

// StoreFloat64 stores a number; one beyond float64's range is refused.
func (v *Value) StoreFloat64(p *float64) error {
	switch v.Kind {
	case Null:
	case Number:
		f, err := strconv.ParseFloat(v.Text, 64)
		if err != nil {
			return errors.New("want a number in range, found " + v.Text)
		}
		*p = f
	default:
		return v.want("a number")
	}
	return nil
}
