package uci

import (
	"fmt"
	"strings"
)

// maxErrors bounds the report for a file that is not UCI at all.
const maxErrors = 25

// Parse reads a UCI file. name is only used in error messages. On syntax
// errors it returns an ErrorList, with every error it found (one per
// statement), together with what it could read.
func Parse(name string, data []byte) (*File, error) {
	p := parser{src: string(data), line: 1, file: name, f: &File{}}
	p.run()
	if len(p.errs) > 0 {
		return p.f, p.errs
	}
	return p.f, nil
}

type tokenState uint8

const (
	tokEmpty tokenState = iota // nothing read yet
	tokSlice                   // the token is src[ta:tb]
	tokBuf                     // the token is buf
)

type parser struct {
	src  string
	pos  int
	line int
	file string
	f    *File
	cur  *Section
	errs ErrorList
	// stmtLine is where the current statement began. A quote left open
	// swallows the lines after it into this statement's value, so this is
	// the line to blame, not the line of the last quote.
	stmtLine int

	// The word being read: kept as a substring of src while its pieces are
	// contiguous, copied to buf only when quotes or escapes split it.
	tok    tokenState
	ta, tb int
	buf    []byte
}

func (p *parser) run() {
	if i := strings.IndexByte(p.src, 0); i >= 0 {
		// libuci reads lines with fgets and would silently cut them here.
		p.errorAt(1+strings.Count(p.src[:i], "\n"), "", "", "NUL byte in file")
		return
	}
	for p.pos < len(p.src) {
		if len(p.errs) >= maxErrors {
			p.errorAt(p.line, "", "", "too many errors, giving up")
			return
		}
		p.statement()
	}
}

func (p *parser) errorAt(line int, stmt, name, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Stmt: stmt, Name: name, Msg: msg})
}

// statement reads one statement, or a blank, comment or separator, and
// always moves forward.
func (p *parser) statement() {
	p.skipBlanks()
	if p.pos >= len(p.src) {
		return
	}
	switch p.src[p.pos] {
	case '\n':
		p.pos++
		p.line++
		return
	case '#':
		p.skipComment()
		return
	case ';':
		p.pos++
		return
	}
	line := p.line
	p.stmtLine = line
	start := p.pos
	for p.pos < len(p.src) && !isSpace(p.src[p.pos]) && p.src[p.pos] != ';' {
		p.pos++
	}
	switch word := p.src[start:p.pos]; word {
	case "package", "p":
		p.packageStmt(line)
	case "config", "c":
		p.configStmt(line)
	case "option", "o":
		p.optionStmt(line, "option")
	case "list", "l":
		p.optionStmt(line, "list")
	default:
		msg := "unknown command (a statement starts with config, option, list or package)"
		if looksLikeKeyword(word) {
			// Only a short lower-case word is echoed: a stray line may
			// be the second half of a password.
			msg = fmt.Sprintf("unknown command %q (a statement starts with config, option, list or package)", word)
		}
		p.errorAt(line, "", "", msg)
		p.drain("", "")
	}
}

func looksLikeKeyword(w string) bool {
	if len(w) > 12 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

func (p *parser) packageStmt(line int) {
	name, _, ok := p.arg("package", "")
	if !ok {
		return
	}
	if !p.end("package", "") {
		return
	}
	switch {
	case name == "":
		p.errorAt(line, "package", "", "missing package name")
	case !validPackage(name):
		p.errorAt(line, "package", "", "invalid package name (allowed: A-Z a-z 0-9 _ -)")
	default:
		p.f.Package = name
	}
}

func (p *parser) configStmt(line int) {
	typ, _, ok := p.arg("config", "")
	if !ok {
		return
	}
	name, _, ok := p.arg("config", "")
	if !ok || !p.end("config", "") {
		return
	}
	// Options after a broken header go to a section outside the file, so
	// one mistake gives one error rather than one per option.
	p.cur = &Section{Type: typ, Name: name, Line: line}
	switch {
	case typ == "":
		p.errorAt(line, "config", "", "missing section type")
		return
	case !validType(typ):
		p.errorAt(line, "config", "", "invalid section type (printable characters, no spaces)")
		return
	case name != "" && !validName(name):
		p.errorAt(line, "config", "", "invalid section name (allowed: A-Z a-z 0-9 _)")
		return
	}
	if name != "" {
		if s := p.f.Section(name); s != nil && s.Type != typ {
			// libuci's strict mode refuses this too.
			p.errorAt(line, "config", "", fmt.Sprintf("section %q was opened with type %q on line %d", name, s.Type, s.Line))
			return
		}
	}
	p.cur = p.f.addSection(typ, name, line)
}

func (p *parser) optionStmt(line int, stmt string) {
	name, _, ok := p.arg(stmt, "")
	if !ok {
		return
	}
	if name == "" {
		p.errorAt(line, stmt, "", "missing name")
		p.drain(stmt, "")
		return
	}
	if !validName(name) {
		p.errorAt(line, stmt, "", "invalid name (allowed: A-Z a-z 0-9 _)")
		p.drain(stmt, "")
		return
	}
	value, _, ok := p.arg(stmt, name)
	if !ok || !p.end(stmt, name) {
		return
	}
	if p.cur == nil {
		p.errorAt(line, stmt, name, "comes before the first config section")
		return
	}
	if stmt == "list" {
		p.cur.addList(name, value, line)
	} else {
		p.cur.set(name, value, line)
	}
}

// end checks that the statement has no more words, reading past any so
// that a quoted extra word spanning lines is not taken for statements.
func (p *parser) end(stmt, name string) bool {
	line := p.line
	if n := p.drain(stmt, name); n > 0 {
		p.errorAt(line, stmt, name, "too many arguments (quote a value that contains spaces)")
		return false
	}
	return true
}

// drain reads and drops the words left in the statement and says how many
// there were.
func (p *parser) drain(stmt, name string) int {
	n := 0
	for {
		_, present, ok := p.arg(stmt, name)
		if !ok || !present {
			return n
		}
		n++
	}
}

// arg reads the next word of the statement. present is false at the end of
// the statement (end of line, ';', '#' or end of file); ok is false after a
// syntax error, which is recorded.
func (p *parser) arg(stmt, name string) (word string, present, ok bool) {
	p.skipBlanks()
	if p.pos >= len(p.src) {
		return "", false, true
	}
	switch p.src[p.pos] {
	case '\n', '#', ';':
		return "", false, true
	}
	p.tok = tokEmpty
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\'':
			start := p.pos + 1
			n := strings.IndexByte(p.src[start:], '\'')
			if n < 0 {
				p.pos = len(p.src)
				p.errorAt(p.stmtLine, stmt, name, "unterminated ' quote")
				return "", true, false
			}
			p.line += strings.Count(p.src[start:start+n], "\n")
			p.add(start, start+n)
			p.pos = start + n + 1
		case c == '"':
			if !p.doubleQuoted(stmt, name) {
				return "", true, false
			}
		case c == '\\':
			if n := p.continuation(); n > 0 {
				p.pos += n
				p.line++
				continue
			}
			if p.pos+1 == len(p.src) {
				// libuci drops a backslash that ends the file.
				p.pos++
				continue
			}
			p.add(p.pos+1, p.pos+2)
			p.pos += 2
		case c == '#', c == ';', isSpace(c):
			return p.token(), true, true
		default:
			p.add(p.pos, p.pos+1)
			p.pos++
		}
	}
	return p.token(), true, true
}

// doubleQuoted reads a "..." piece: a backslash takes the next byte
// literally, and a backslash before a line end joins the lines.
func (p *parser) doubleQuoted(stmt, name string) bool {
	p.pos++
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case '"':
			p.pos++
			return true
		case '\\':
			if n := p.continuation(); n > 0 {
				p.pos += n
				p.line++
				continue
			}
			if p.pos+1 == len(p.src) {
				p.pos++
				continue
			}
			p.add(p.pos+1, p.pos+2)
			p.pos += 2
		case '\n':
			p.line++
			fallthrough
		default:
			p.add(p.pos, p.pos+1)
			p.pos++
		}
	}
	p.errorAt(p.stmtLine, stmt, name, `unterminated " quote`)
	return false
}

// continuation returns the length of a backslash-newline at pos (LF or
// CRLF), or 0.
func (p *parser) continuation() int {
	rest := p.src[p.pos+1:]
	switch {
	case strings.HasPrefix(rest, "\n"):
		return 2
	case strings.HasPrefix(rest, "\r\n"):
		return 3
	}
	return 0
}

func (p *parser) add(a, b int) {
	switch {
	case p.tok == tokEmpty:
		p.ta, p.tb, p.tok = a, b, tokSlice
	case p.tok == tokSlice && a == p.tb:
		p.tb = b
	case p.tok == tokSlice:
		p.buf = append(append(p.buf[:0], p.src[p.ta:p.tb]...), p.src[a:b]...)
		p.tok = tokBuf
	default:
		p.buf = append(p.buf, p.src[a:b]...)
	}
}

func (p *parser) token() string {
	switch p.tok {
	case tokSlice:
		return p.src[p.ta:p.tb]
	case tokBuf:
		return string(p.buf)
	}
	return ""
}

// skipBlanks skips white space up to, not over, the end of the line.
func (p *parser) skipBlanks() {
	for p.pos < len(p.src) && p.src[p.pos] != '\n' && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func (p *parser) skipComment() {
	if n := strings.IndexByte(p.src[p.pos:], '\n'); n >= 0 {
		p.pos += n
	} else {
		p.pos = len(p.src)
	}
}
