package uci

import (
	"bytes"
	"fmt"
	"strings"
)

// maxErrors bounds the report for a file that is not UCI at all.
const maxErrors = 25

// Parse reads a UCI file. name is only used in error messages. On syntax
// errors it returns an ErrorList, with every error it found (one per
// statement), together with what it could read.
func Parse(name string, data []byte) (*File, error) {
	p := parser{src: data, file: name, f: &File{}}
	p.run()
	if len(p.errs) > 0 {
		return p.f, p.errs
	}
	return p.f, nil
}

// parser follows libuci's file.c step by step, because its odd corners
// (what a ';' does, where a keyword ends) come from how it works: it holds
// one line at a time in a buffer (longer when a quote or a backslash pulls
// in the next line), ends each word by writing a NUL byte into that buffer,
// and a NUL it writes over a ';' ends the line. Where libuci fails, this
// parser reports an error; where libuci would silently drop part of a line,
// it reports one too, so that a file gogoc accepts reads the same to libuci.
type parser struct {
	src  []byte
	next int // offset in src of the first byte not yet read into buf
	line int // number of the last physical line read into buf

	// buf is the line being parsed (libuci's pctx->buf). A NUL byte in it
	// marks the end, as in C: the parser writes NULs to end words.
	buf []byte
	pos int

	file string
	f    *File
	sec  *Section
	errs ErrorList

	// The statement being read, for error messages. A quote left open
	// swallows the lines after it, so stmtLine (where the statement
	// began) is the line to blame, not the line of the last quote.
	stmtLine int
	stmt     string
	name     string
}

func (p *parser) run() {
	if i := bytes.IndexByte(p.src, 0); i >= 0 {
		// libuci reads lines with fgets and would silently cut them here.
		p.errorAt(1+bytes.Count(p.src[:i], []byte("\n")), "", "", "NUL byte in file")
		return
	}
	for p.next < len(p.src) {
		if len(p.errs) >= maxErrors {
			p.errorAt(p.line, "", "", "too many errors, giving up")
			return
		}
		p.pos = 0
		p.getln(0)
		p.parseLine()
	}
}

func (p *parser) errorAt(line int, stmt, name, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Stmt: stmt, Name: name, Msg: msg})
}

// fail reports msg against the current statement.
func (p *parser) fail(line int, msg string) {
	p.errorAt(line, p.stmt, p.name, msg)
}

// getln replaces the buffer from offset on with the next line of the file,
// newline included (uci_getln). At the end of the file the buffer just
// ends at offset.
func (p *parser) getln(offset int) {
	p.buf = p.buf[:offset]
	if p.next >= len(p.src) {
		return
	}
	end := len(p.src)
	if i := bytes.IndexByte(p.src[p.next:], '\n'); i >= 0 {
		end = p.next + i + 1
	}
	p.buf = append(p.buf, p.src[p.next:end]...)
	p.next = end
	p.line++
}

// at is the byte at i, 0 past the end.
func (p *parser) at(i int) byte {
	if i < len(p.buf) {
		return p.buf[i]
	}
	return 0
}

func (p *parser) cur() byte { return p.at(p.pos) }

func (p *parser) put(i int, c byte) {
	if i < len(p.buf) {
		p.buf[i] = c
	}
}

// str is the NUL-terminated word at i.
func (p *parser) str(i int) string {
	if i >= len(p.buf) {
		return ""
	}
	if n := bytes.IndexByte(p.buf[i:], 0); n >= 0 {
		return string(p.buf[i : i+n])
	}
	return string(p.buf[i:])
}

// skipSpace skips white space, line ends included, up to the end of the
// buffer (skip_whitespace).
func (p *parser) skipSpace() {
	for c := p.cur(); c != 0 && isSpace(c); c = p.cur() {
		p.pos++
	}
}

// parseLine runs the statements of one line (uci_parse_line). After an
// error the rest of the line is dropped, as libuci does when it goes on
// after one (uci -S).
func (p *parser) parseLine() {
	p.skipSpace()
	for {
		// libuci cuts the keyword with strtok(" \t"): it ends only at a
		// space or a tab, so "config;" or "option\n" is one unknown word.
		start := p.pos
		for c := p.at(start); c == ' ' || c == '\t'; c = p.at(start) {
			start++
		}
		if p.at(start) == 0 {
			return
		}
		end := start
		for c := p.at(end); c != 0 && c != ' ' && c != '\t'; c = p.at(end) {
			end++
		}
		word := p.str(start)[:end-start]
		if word[0] == '#' {
			return
		}
		p.stmtLine, p.stmt, p.name = p.line, "", ""
		kw := keyword(word)
		if kw == "" {
			p.stmt = missingKeyword(word)
			p.fail(p.line, unknownCommand(word))
			p.pos = start
			p.drain()
			return
		}
		p.stmt = kw
		if end >= len(p.buf) {
			// The keyword ends the file: libuci's "config without name".
			p.fail(p.line, missingArg(kw))
			return
		}
		p.put(end, 0)
		p.pos = end + 1
		var ok bool
		switch kw {
		case "package":
			ok = p.packageStmt()
		case "config":
			ok = p.configStmt()
		default:
			ok = p.optionStmt()
		}
		if !ok {
			p.drain()
			return
		}
	}
}

// keyword maps a statement word to its keyword; libuci takes the first
// letter alone too.
func keyword(w string) string {
	for _, kw := range []string{"package", "config", "option", "list"} {
		if w == kw || w == kw[:1] {
			return kw
		}
	}
	return ""
}

// splitWord cuts a statement word where it would end if libuci also cut
// keywords at line ends and ';'.
func splitWord(word string) (head, rest string) {
	if i := strings.IndexFunc(word, func(r rune) bool { return r < 0x80 && (isSpace(byte(r)) || r == ';') }); i >= 0 {
		return word[:i], word[i:]
	}
	return word, ""
}

// missingKeyword returns the keyword of a word that is a keyword and the
// end of the line ("option\n"), libuci's "invalid command" for a
// statement without arguments.
func missingKeyword(word string) string {
	head, rest := splitWord(word)
	if kw := keyword(head); kw != "" && strings.TrimLeft(rest, " \t\n\v\f\r") == "" {
		return kw
	}
	return ""
}

// unknownCommand explains a word libuci reports as an invalid command.
func unknownCommand(word string) string {
	const starts = "(a statement starts with config, option, list or package)"
	switch {
	case word[0] == ';':
		return "a statement cannot start with ';'"
	case isSpace(word[0]):
		// What strtok leaves after a statement ended by "; ".
		return "';' with no statement after it on the line (libuci takes the line end for a command; remove the ';')"
	}
	if kw := missingKeyword(word); kw != "" {
		return missingArg(kw)
	}
	head, _ := splitWord(word)
	if keyword(head) != "" {
		return fmt.Sprintf("%q must be followed by a space or a tab", head)
	}
	if looksLikeKeyword(head) {
		// Only a short lower-case word is echoed: a stray line may
		// be the second half of a password.
		return fmt.Sprintf("unknown command %q %s", head, starts)
	}
	return "unknown command " + starts
}

func missingArg(kw string) string {
	switch kw {
	case "package":
		return "missing package name"
	case "config":
		return "missing section type"
	}
	return "missing name"
}

func looksLikeKeyword(w string) bool {
	if w == "" || len(w) > 12 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// drain reads and drops the words left on the line after an error, so that
// a quote spanning lines is not taken for statements.
func (p *parser) drain() {
	for {
		p.skipSpace()
		if p.cur() == 0 {
			return
		}
		if _, _, ok := p.nextArg(); !ok {
			return
		}
	}
}

func (p *parser) packageStmt() bool {
	line := p.line
	name, _, ok := p.nextArg()
	if !ok {
		return false
	}
	switch {
	case name == "":
		p.fail(line, "missing package name")
		return false
	case !validPackage(name):
		p.fail(line, "invalid package name (allowed: A-Z a-z 0-9 _ -)")
		return false
	}
	if !p.assertEOL(false) {
		return false
	}
	// libuci checks the name and otherwise ignores the statement when it
	// loads a file by name; the package stays the file's.
	p.f.Package = name
	return true
}

func (p *parser) configStmt() bool {
	line := p.line
	// Options after a broken header go to a section outside the file, so
	// one mistake gives one error rather than one per option.
	p.sec = &Section{Line: line}
	typ, _, ok := p.nextArg()
	if !ok {
		return false
	}
	switch {
	case typ == "":
		p.fail(line, "missing section type")
		return false
	case !validType(typ):
		p.fail(line, "invalid section type (printable characters, no spaces)")
		return false
	}
	name, semi, ok := p.nextArg()
	if !ok {
		return false
	}
	if name != "" && !validName(name) {
		p.fail(line, "invalid section name (allowed: A-Z a-z 0-9 _)")
		return false
	}
	if !p.assertEOL(semi) {
		return false
	}
	if name != "" {
		if s := p.f.Section(name); s != nil && s.Type != typ {
			// libuci's strict mode refuses this too.
			p.fail(line, fmt.Sprintf("section %q was opened with type %q on line %d", name, s.Type, s.Line))
			return false
		}
	}
	p.sec = p.f.addSection(typ, name, line)
	return true
}

func (p *parser) optionStmt() bool {
	line := p.line
	name, _, ok := p.nextArg()
	if !ok {
		return false
	}
	if name == "" {
		p.fail(line, "missing name")
		return false
	}
	if !validName(name) {
		p.fail(line, "invalid name (allowed: A-Z a-z 0-9 _)")
		return false
	}
	p.name = name
	value, semi, ok := p.nextArg()
	if !ok || !p.assertEOL(semi) {
		return false
	}
	if p.sec == nil {
		p.fail(line, "comes before the first config section")
		return false
	}
	if p.stmt == "list" {
		p.sec.addList(name, value, line)
	} else {
		p.sec.parsedSet(name, value, line)
	}
	return true
}

// assertEOL checks that the statement has no more words (assert_eol);
// semi says the last argument was a lone ';', which libuci reads as an
// empty argument rather than the end of the statement.
func (p *parser) assertEOL(semi bool) bool {
	line := p.line
	p.skipSpace()
	extra, _, ok := p.nextArg()
	if !ok {
		return false
	}
	if extra != "" {
		msg := "too many arguments (quote a value that contains spaces)"
		if semi {
			msg = "too many arguments: libuci reads that ';' as an empty argument, not as the end of the statement (start a new line instead)"
		}
		p.fail(line, msg)
		return false
	}
	return true
}

// nextArg reads the next word of the statement (next_arg). A ';' where a
// word would start is consumed as an empty word (semi). ok is false after
// an unterminated quote, which is reported.
func (p *parser) nextArg() (word string, semi, ok bool) {
	p.skipSpace()
	val := p.pos
	if p.cur() == ';' {
		p.put(p.pos, 0)
		p.pos++
		return "", true, true
	}
	if !p.parseStr() {
		return "", false, false
	}
	return p.str(val), false, true
}

// parseStr decodes one word in place (parse_str): target is where the next
// decoded byte goes, never after pos. Quoted pieces and escapes join.
func (p *parser) parseStr() bool {
	target := p.pos
	next := true
loop:
	for {
		switch p.cur() {
		case '\'':
			if !p.singleQuote(&target) {
				return false
			}
		case '"':
			if !p.doubleQuote(&target) {
				return false
			}
		case '#':
			p.put(p.pos, 0)
			break loop
		case 0:
			break loop
		case ';':
			next = false
			if target == p.pos {
				// The NUL that ends this word lands on the ';':
				// libuci no longer sees anything after it.
				p.checkDropped()
			}
			break loop
		case '\\':
			if p.backslash() {
				p.addc(&target)
			}
		default:
			p.addc(&target)
		}
		if c := p.cur(); c == 0 || isSpace(c) {
			break
		}
	}
	if p.cur() != 0 && next {
		p.pos++
	}
	p.put(target, 0)
	return true
}

// checkDropped reports the rest of the line after the ';' at pos when it
// holds more than blanks, ';' and a comment: libuci would ignore it.
func (p *parser) checkDropped() {
	rest := p.buf[p.pos+1:]
	if n := bytes.IndexByte(rest, 0); n >= 0 {
		rest = rest[:n]
	}
	rest = bytes.TrimLeft(rest, " \t\n\v\f\r;")
	if len(rest) > 0 && rest[0] != '#' {
		p.fail(p.line, "libuci ignores the rest of the line after a ';' that directly follows an unquoted word; put a space before the ';' or start a new line")
	}
}

func (p *parser) addc(target *int) {
	p.buf[*target] = p.buf[p.pos]
	*target++
	p.pos++
}

// backslash steps over a backslash (parse_backslash). Before a line end it
// pulls in the next line and says the backslash yields nothing; otherwise
// the byte after it is taken literally.
func (p *parser) backslash() bool {
	p.pos++
	c := p.cur()
	if c == 0 || c == '\n' || c == '\r' && p.at(p.pos+1) == '\n' && p.at(p.pos+2) == 0 {
		p.getln(p.pos)
		return false
	}
	return true
}

// singleQuote reads a '...' piece: every byte literal, line ends included.
func (p *parser) singleQuote(target *int) bool {
	p.pos++
	for {
		switch p.cur() {
		case '\'':
			p.pos++
			return true
		case 0:
			p.getln(p.pos)
			if p.cur() == 0 {
				p.fail(p.stmtLine, "unterminated ' quote")
				return false
			}
		default:
			p.addc(target)
		}
	}
}

// doubleQuote reads a "..." piece: a backslash takes the next byte
// literally, and a backslash before a line end joins the lines.
func (p *parser) doubleQuote(target *int) bool {
	p.pos++
	for {
		switch p.cur() {
		case '"':
			p.pos++
			return true
		case 0:
			p.getln(p.pos)
			if p.cur() == 0 {
				p.fail(p.stmtLine, `unterminated " quote`)
				return false
			}
		case '\\':
			if p.backslash() {
				p.addc(target)
			}
		default:
			p.addc(target)
		}
	}
}
