package tsp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The encoding/xml decoder the shipped code used before tsp/xml.go, kept as
// an independent reference for the differential tests.

// refTunnelDoc adds the root-name check to the shared xmlTunnel shape;
// encoding/xml flattens the embedded struct's fields.
type refTunnelDoc struct {
	XMLName xml.Name `xml:"tunnel"`
	xmlTunnel
}

var errRefNoTunnel = errors.New("no <tunnel> element")

// refDecodeTunnelXML is the former decodeTunnelXML, minus the phase wrapping.
func refDecodeTunnelXML(data []byte) (*xmlTunnel, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, errors.New("NUL byte")
	}
	if err := refCheckXMLDepth(data); err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var doc refTunnelDoc
	if err := d.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errRefNoTunnel
		}
		return nil, err
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return nil, errors.New("unexpected content after </tunnel>")
		}
	}
	return &doc.xmlTunnel, nil
}

// refCheckXMLDepth is the former checkXMLDepth.
func refCheckXMLDepth(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := d.RawToken()
		if err != nil {
			return nil
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxXMLDepth {
				return errors.New("XML nested too deeply")
			}
		case xml.EndElement:
			depth--
		}
	}
}

// The subset tsp/xml.go promises to read: plain ASCII names, quoted and
// white-space separated attributes without duplicates, character data,
// predefined entities and character references to XML characters, comments,
// CDATA, and an XML declaration at offset 0; only white space and comments
// before the root, only white space after it.
var (
	subsetName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9._-]*$`)
	subsetDecl    = regexp.MustCompile(`^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*("1\.0"|'1\.0')([ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*("(?i:utf-8)"|'(?i:utf-8)'))?([ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*("yes"|'yes'|"no"|'no'))?[ \t\r\n]*\?>`)
	subsetCharRef = regexp.MustCompile(`&#(x[0-9a-fA-F]+|[0-9]+);`)
)

// inXMLSubset classifies data using encoding/xml's tokenizer plus checks on
// the raw bytes of each token; it shares no code with tsp/xml.go.
func inXMLSubset(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, r := range string(data) {
		if !(r == 0x9 || r == 0xA || r == 0xD || 0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= 0x10FFFF) {
			return false
		}
	}
	// encoding/xml turns a reference to a surrogate into U+FFFD; XML forbids it.
	for _, m := range subsetCharRef.FindAllSubmatch(data, -1) {
		s, base := string(m[1]), 10
		if s[0] == 'x' {
			s, base = s[1:], 16
		}
		n, err := strconv.ParseUint(s, base, 64)
		if err != nil || 0xD800 <= n && n <= 0xDFFF {
			return false
		}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth, closed := 0, false
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			return closed
		}
		if err != nil {
			return false
		}
		raw := data[before:d.InputOffset()]
		switch t := tok.(type) {
		case xml.ProcInst:
			if before != 0 || !subsetDecl.Match(data) {
				return false
			}
		case xml.Directive:
			return false
		case xml.Comment:
			if closed {
				return false
			}
		case xml.CharData:
			if depth == 0 && (bytes.HasPrefix(raw, []byte("<![CDATA[")) || strings.Trim(string(t), " \t\r\n") != "") {
				return false
			}
		case xml.StartElement:
			if closed || t.Name.Space != "" || !subsetName.MatchString(t.Name.Local) || !attrsSeparated(raw) {
				return false
			}
			seen := map[string]bool{}
			for _, a := range t.Attr {
				if a.Name.Space != "" || !subsetName.MatchString(a.Name.Local) || seen[a.Name.Local] {
					return false
				}
				seen[a.Name.Local] = true
			}
			depth++
		case xml.EndElement:
			if t.Name.Space != "" || !subsetName.MatchString(t.Name.Local) {
				return false
			}
			depth--
			if depth == 0 {
				closed = true
			}
		}
	}
}

// attrsSeparated: in a raw start tag, every closing quote of a value is
// followed by white space, '/' or '>' (encoding/xml does not insist).
func attrsSeparated(tag []byte) bool {
	var q byte
	for i, c := range tag {
		switch {
		case q == 0 && (c == '"' || c == '\''):
			q = c
		case q != 0 && c == q:
			q = 0
			if i+1 >= len(tag) || !strings.ContainsRune(" \t\r\n/>", rune(tag[i+1])) {
				return false
			}
		}
	}
	return true
}
