package tsp

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A strict reader for the small XML subset brokers send (spec §5.1, §5.5).
// It replaces encoding/xml in the shipped binary: TSP needs elements,
// attributes, character data, the predefined entities, character references,
// comments, CDATA and an XML declaration, nothing more. Anything outside that
// subset (DOCTYPE, processing instructions, namespace prefixes, unquoted or
// duplicate attributes) is refused, never guessed at.

// errNoTunnel: the document holds no element at all.
var errNoTunnel = errors.New("no <tunnel> element")

// xmlSyntaxError carries the byte offset of the problem; Error renders it as
// line and column, which is what someone reading a broker capture needs.
type xmlSyntaxError struct {
	line, col int
	msg       string
}

func (e *xmlSyntaxError) Error() string {
	return "line " + strconv.Itoa(e.line) + ", column " + strconv.Itoa(e.col) + ": " + e.msg
}

// xmlElem is one parsed element: the generic tree the xmlTunnel mapping reads.
type xmlElem struct {
	name  string
	attrs []xmlAttr
	text  []byte // direct character data only, as encoding/xml's ",chardata"
	kids  []*xmlElem
}

type xmlAttr struct{ name, value string }

// attr returns the value of attribute name, or "".
func (e *xmlElem) attr(name string) string {
	for _, a := range e.attrs {
		if a.name == name {
			return a.value
		}
	}
	return ""
}

type xmlParser struct {
	data []byte
	pos  int
}

// errAt builds a syntax error for byte offset off, as line and column.
func (p *xmlParser) errAt(off int, msg string) error {
	line, col := 1, 1
	for _, c := range p.data[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else if c&0xC0 != 0x80 { // count runes, not bytes
			col++
		}
	}
	return &xmlSyntaxError{line: line, col: col, msg: msg}
}

func (p *xmlParser) eof() bool { return p.pos >= len(p.data) }

// at reports whether the input continues with s.
func (p *xmlParser) at(s string) bool { return bytes.HasPrefix(p.data[p.pos:], []byte(s)) }

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipSpace skips XML white space (S) and reports whether there was any.
func (p *xmlParser) skipSpace() bool {
	start := p.pos
	for !p.eof() && isXMLSpace(p.data[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

// parseXMLTunnel parses a whole document whose root must be <tunnel>.
func parseXMLTunnel(data []byte) (*xmlTunnel, error) {
	p := &xmlParser{data: data}
	if err := p.checkChars(); err != nil {
		return nil, err
	}
	p.skipBOM()
	if p.at("<?xml") && len(p.data) > p.pos+5 && (isXMLSpace(p.data[p.pos+5]) || p.data[p.pos+5] == '?') {
		if err := p.xmlDecl(); err != nil {
			return nil, err
		}
	}
	for {
		p.skipSpace()
		switch {
		case p.eof():
			return nil, errNoTunnel
		case p.at("<!--"):
			if err := p.comment(); err != nil {
				return nil, err
			}
			continue
		case p.at("<?"), p.at("<!"), p.at("</"), p.data[p.pos] != '<':
			return nil, p.misplaced("before <tunnel>")
		}
		break
	}
	start := p.pos
	root, err := p.element(1)
	if err != nil {
		return nil, err
	}
	if root.name != "tunnel" {
		return nil, p.errAt(start, "root element <"+root.name+">, want <tunnel>")
	}
	// Trailing comments are refused too: the old decoder did, and a broker
	// has no reason to send them.
	p.skipSpace()
	if !p.eof() {
		return nil, p.errAt(p.pos, "unexpected content after </tunnel>")
	}
	return tunnelFromXML(root), nil
}

// checkChars refuses invalid UTF-8 and code points XML forbids anywhere in
// the document, so the rest of the parser can work on bytes.
func (p *xmlParser) checkChars() error {
	for i := 0; i < len(p.data); {
		r, n := utf8.DecodeRune(p.data[i:])
		if r == utf8.RuneError && n == 1 {
			return p.errAt(i, "invalid UTF-8")
		}
		if !isXMLChar(r) {
			return p.errAt(i, "character "+strconv.QuoteRune(r)+" not allowed in XML")
		}
		i += n
	}
	return nil
}

// isXMLChar is the Char production of XML 1.0 §2.2.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func (p *xmlParser) skipBOM() {
	if p.at("\uFEFF") {
		p.pos += len("\uFEFF")
	}
}

// misplaced names what was found where it is not allowed.
func (p *xmlParser) misplaced(where string) error {
	what := "character data"
	switch {
	case p.at("<!DOCTYPE"):
		what = "DOCTYPE"
	case p.at("<![CDATA["):
		what = "CDATA section"
	case p.at("<?"):
		what = "processing instruction"
	case p.at("<!"):
		what = "markup declaration"
	case p.at("</"):
		what = "end tag"
	}
	return p.errAt(p.pos, what+" not allowed "+where)
}

// xmlDecl accepts <?xml version="1.0" [encoding="UTF-8"] [standalone="yes|no"]?>.
func (p *xmlParser) xmlDecl() error {
	start := p.pos
	end := bytes.Index(p.data[p.pos:], []byte("?>"))
	if end < 0 {
		return p.errAt(start, "unterminated XML declaration")
	}
	p.pos += len("<?xml")
	limit := start + end
	// Pseudo-attributes come in this order; only version is mandatory.
	names := [...]string{"version", "encoding", "standalone"}
	next := 0
	for {
		sp := p.skipSpace()
		if p.pos >= limit {
			break
		}
		nameAt := p.pos
		if !sp {
			return p.errAt(nameAt, "expected white space in XML declaration")
		}
		name, err := p.name()
		if err != nil {
			return err
		}
		i := next
		for i < len(names) && names[i] != name {
			i++
		}
		if i == len(names) || next == 0 && i != 0 {
			return p.errAt(nameAt, "unexpected "+quoteSnippet([]byte(name))+" in XML declaration")
		}
		next = i + 1
		v, err := p.attrValue()
		if err != nil {
			return err
		}
		var ok bool
		switch name {
		case "version":
			ok = v == "1.0"
		case "encoding":
			ok = equalFoldASCII(v, "utf-8")
		default:
			ok = v == "yes" || v == "no"
		}
		if !ok {
			return p.errAt(nameAt, "unsupported "+name+" "+quoteSnippet([]byte(v))+" in XML declaration")
		}
	}
	if next == 0 {
		return p.errAt(start, "XML declaration without a version")
	}
	if p.pos != limit {
		return p.errAt(limit, "malformed XML declaration")
	}
	p.pos = limit + len("?>")
	return nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// name reads [A-Za-z_][A-Za-z0-9._-]*. TSP names are plain ASCII; a colon
// (namespace prefix) or a non-ASCII letter is refused rather than half-handled.
func (p *xmlParser) name() (string, error) {
	start := p.pos
	for !p.eof() {
		c := p.data[p.pos]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' ||
			p.pos > start && ('0' <= c && c <= '9' || c == '.' || c == '-') {
			p.pos++
			continue
		}
		if c == ':' || c >= utf8.RuneSelf {
			return "", p.errAt(p.pos, "unsupported character in name (namespaces and non-ASCII names are not accepted)")
		}
		break
	}
	if p.pos == start {
		if p.eof() {
			return "", p.errAt(p.pos, "unexpected end of input, expected a name")
		}
		return "", p.errAt(p.pos, "expected a name, found "+strconv.QuoteRune(rune(p.data[p.pos])))
	}
	return string(p.data[start:p.pos]), nil
}

// comment skips <!-- ... -->; "--" inside a comment is not XML.
func (p *xmlParser) comment() error {
	start := p.pos
	i := bytes.Index(p.data[p.pos+4:], []byte("--"))
	if i < 0 {
		return p.errAt(start, "unterminated comment")
	}
	end := p.pos + 4 + i
	if end+2 >= len(p.data) || p.data[end+2] != '>' {
		return p.errAt(end, `"--" inside a comment`)
	}
	p.pos = end + 3
	return nil
}

// attrValue reads = and a quoted value, after optional white space.
func (p *xmlParser) attrValue() (string, error) {
	p.skipSpace()
	if p.eof() || p.data[p.pos] != '=' {
		return "", p.errAt(p.pos, "expected = after attribute name")
	}
	p.pos++
	p.skipSpace()
	if p.eof() || p.data[p.pos] != '"' && p.data[p.pos] != '\'' {
		return "", p.errAt(p.pos, "attribute value must be in quotes")
	}
	q := p.data[p.pos]
	p.pos++
	v, err := p.text(nil, q)
	return string(v), err
}

// element parses one element whose '<' is at p.pos; depth counts the root as 1.
func (p *xmlParser) element(depth int) (*xmlElem, error) {
	start := p.pos
	if depth > maxXMLDepth {
		return nil, p.errAt(start, "elements nested too deeply (more than "+strconv.Itoa(maxXMLDepth)+" levels)")
	}
	p.pos++
	name, err := p.name()
	if err != nil {
		return nil, err
	}
	e := &xmlElem{name: name}
	var seen map[string]bool
	for {
		sp := p.skipSpace()
		if p.eof() {
			return nil, p.errAt(start, "unterminated start tag <"+name+">")
		}
		switch p.data[p.pos] {
		case '/':
			if !p.at("/>") {
				return nil, p.errAt(p.pos, "expected /> in <"+name+">")
			}
			p.pos += 2
			return e, nil
		case '>':
			p.pos++
			return e, p.content(e, start, depth)
		}
		if !sp {
			return nil, p.errAt(p.pos, "expected white space before attribute in <"+name+">")
		}
		aAt := p.pos
		an, err := p.name()
		if err != nil {
			return nil, err
		}
		dup := seen[an]
		for i := 0; seen == nil && i < len(e.attrs); i++ {
			dup = dup || e.attrs[i].name == an
		}
		if dup {
			return nil, p.errAt(aAt, "duplicate attribute "+an+" in <"+name+">")
		}
		v, err := p.attrValue()
		if err != nil {
			return nil, err
		}
		e.attrs = append(e.attrs, xmlAttr{an, v})
		// Past a few attributes, look duplicates up in a set so that a
		// hostile tag with thousands of them costs linear time.
		switch {
		case seen != nil:
			seen[an] = true
		case len(e.attrs) == 16:
			seen = make(map[string]bool)
			for _, a := range e.attrs {
				seen[a.name] = true
			}
		}
	}
}

// content parses what follows the start tag of e up to its end tag.
func (p *xmlParser) content(e *xmlElem, start, depth int) error {
	for {
		if p.eof() {
			return p.errAt(start, "unexpected end of input: <"+e.name+"> not closed")
		}
		if p.data[p.pos] != '<' {
			var err error
			if e.text, err = p.text(e.text, 0); err != nil {
				return err
			}
			continue
		}
		switch {
		case p.at("</"):
			endAt := p.pos
			p.pos += 2
			n, err := p.name()
			if err != nil {
				return err
			}
			p.skipSpace()
			if p.eof() || p.data[p.pos] != '>' {
				return p.errAt(p.pos, "expected > to end </"+n+">")
			}
			p.pos++
			if n != e.name {
				return p.errAt(endAt, "<"+e.name+"> closed by </"+n+">")
			}
			return nil
		case p.at("<!--"):
			if err := p.comment(); err != nil {
				return err
			}
		case p.at("<![CDATA["):
			cdStart := p.pos
			p.pos += len("<![CDATA[")
			i := bytes.Index(p.data[p.pos:], []byte("]]>"))
			if i < 0 {
				return p.errAt(cdStart, "unterminated CDATA section")
			}
			e.text = appendNormalisedEOL(e.text, p.data[p.pos:p.pos+i])
			p.pos += i + len("]]>")
		case p.at("<?"), p.at("<!"):
			return p.misplaced("in <" + e.name + ">")
		default:
			kid, err := p.element(depth + 1)
			if err != nil {
				return err
			}
			e.kids = append(e.kids, kid)
		}
	}
}

// appendNormalisedEOL appends b with CR LF and lone CR turned into LF (§2.11).
func appendNormalisedEOL(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' {
			dst = append(dst, '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			continue
		}
		dst = append(dst, b[i])
	}
	return dst
}

// text appends character data to dst, decoding references and normalising
// line ends. quote 0 reads element content up to '<' or the end; otherwise it
// reads an attribute value up to and including the closing quote.
func (p *xmlParser) text(dst []byte, quote byte) ([]byte, error) {
	start := p.pos
	for !p.eof() {
		c := p.data[p.pos]
		switch {
		case quote != 0 && c == quote:
			p.pos++
			return dst, nil
		case c == '<':
			if quote == 0 {
				return dst, nil
			}
			return nil, p.errAt(p.pos, "< inside an attribute value")
		case c == '&':
			r, err := p.reference()
			if err != nil {
				return nil, err
			}
			dst = utf8.AppendRune(dst, r)
		case c == '\r':
			dst = append(dst, '\n')
			p.pos++
			if !p.eof() && p.data[p.pos] == '\n' {
				p.pos++
			}
		case quote == 0 && c == ']' && p.at("]]>"):
			return nil, p.errAt(p.pos, "]]> outside a CDATA section")
		default:
			dst = append(dst, c)
			p.pos++
		}
	}
	if quote != 0 {
		return nil, p.errAt(start, "unterminated attribute value")
	}
	return dst, nil
}

// reference decodes &lt; &gt; &amp; &apos; &quot; &#N; or &#xH; at p.pos.
func (p *xmlParser) reference() (rune, error) {
	semi := bytes.IndexByte(p.data[p.pos:], ';')
	if semi < 0 {
		return 0, p.badReference(len(p.data))
	}
	ref := p.data[p.pos+1 : p.pos+semi]
	var r rune
	switch string(ref) {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "apos":
		r = '\''
	case "quot":
		r = '"'
	default:
		if len(ref) < 2 || ref[0] != '#' {
			return 0, p.badReference(p.pos + semi + 1)
		}
		digits, base := ref[1:], rune(10)
		if digits[0] == 'x' {
			digits, base = digits[1:], 16
		}
		if len(digits) == 0 {
			return 0, p.badReference(p.pos + semi + 1)
		}
		for _, d := range digits {
			var v rune
			switch {
			case '0' <= d && d <= '9':
				v = rune(d - '0')
			case base == 16 && 'a' <= d && d <= 'f':
				v = rune(d-'a') + 10
			case base == 16 && 'A' <= d && d <= 'F':
				v = rune(d-'A') + 10
			default:
				return 0, p.badReference(p.pos + semi + 1)
			}
			r = r*base + v
			if r > utf8.MaxRune {
				return 0, p.badReference(p.pos + semi + 1)
			}
		}
		if !isXMLChar(r) {
			return 0, p.badReference(p.pos + semi + 1)
		}
	}
	p.pos += semi + 1
	return r, nil
}

func (p *xmlParser) badReference(end int) error {
	return p.errAt(p.pos, "invalid character reference "+quoteSnippet(p.data[p.pos:end]))
}

// tunnelFromXML maps the tree onto xmlTunnel the way encoding/xml would:
// children matched by name, unknown elements and attributes ignored.
func tunnelFromXML(root *xmlElem) *xmlTunnel {
	t := &xmlTunnel{
		Action:   root.attr("action"),
		Type:     root.attr("type"),
		Lifetime: root.attr("lifetime"),
		MTU:      root.attr("mtu"),
	}
	for _, k := range root.kids {
		switch k.name {
		case "server":
			t.Server = append(t.Server, xmlServer{Addrs: addrsFromXML(k)})
		case "client":
			t.Client = append(t.Client, clientFromXML(k))
		case "broker":
			t.Broker = append(t.Broker, xmlAddrList{Addrs: addrsFromXML(k)})
		}
	}
	return t
}

func clientFromXML(e *xmlElem) xmlClient {
	c := xmlClient{Addrs: addrsFromXML(e)}
	for _, k := range e.kids {
		switch k.name {
		case "dns_server":
			c.DNSServer = append(c.DNSServer, xmlAddrList{Addrs: addrsFromXML(k)})
		case "router":
			var r xmlRouter
			for _, pk := range k.kids {
				if pk.name == "prefix" {
					r.Prefix = append(r.Prefix, xmlPrefix{Length: pk.attr("length"), Value: string(pk.text)})
				}
			}
			c.Router = append(c.Router, r)
		case "keepalive":
			c.Keepalive = append(c.Keepalive, xmlKeepalive{Interval: k.attr("interval"), Addrs: addrsFromXML(k)})
		}
	}
	return c
}

// addrsFromXML collects the <address> children of e.
func addrsFromXML(e *xmlElem) []xmlAddr {
	var out []xmlAddr
	for _, k := range e.kids {
		if k.name == "address" {
			out = append(out, xmlAddr{Type: k.attr("type"), Value: string(k.text)})
		}
	}
	return out
}
