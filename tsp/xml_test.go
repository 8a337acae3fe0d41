package tsp

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specOffer and specRedirect are the examples of spec §5.1 and §5.5.
const specOffer = "<tunnel action=\"info\" type=\"v6udpv4\" lifetime=\"604800\">\r\n" +
	" <server>\r\n" +
	"  <address type=\"ipv4\">198.51.100.1</address>\r\n" +
	"  <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>\r\n" +
	" </server>\r\n" +
	" <client>\r\n" +
	"  <address type=\"ipv4\">203.0.113.7</address>\r\n" +
	"  <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0002</address>\r\n" +
	"  <address type=\"dn\">alice.broker.example.net</address>\r\n" +
	"  <router>\r\n" +
	"   <prefix length=\"56\">2001:0db8:1234:5600:0000:0000:0000:0000</prefix>\r\n" +
	"  </router>\r\n" +
	"  <keepalive interval=\"30\">\r\n" +
	"   <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>\r\n" +
	"  </keepalive>\r\n" +
	" </client>\r\n" +
	"</tunnel>\r\n"

const specRedirect = "<tunnel action=\"...\">\r\n" +
	" <broker>\r\n" +
	"  <address type=\"ipv4\">198.51.100.20</address>\r\n" +
	"  <address type=\"ipv6\">2001:db8::20</address>\r\n" +
	"  <address type=\"dn\">broker2.example.net</address>\r\n" +
	" </broker>\r\n" +
	"</tunnel>\r\n"

func TestParseXMLTunnelSpecOffer(t *testing.T) {
	got, err := parseXMLTunnel([]byte(specOffer))
	if err != nil {
		t.Fatal(err)
	}
	ka := "2001:0db8:0000:0001:0000:0000:0000:0001"
	want := &xmlTunnel{
		Action: "info", Type: "v6udpv4", Lifetime: "604800",
		Server: []xmlServer{{Addrs: []xmlAddr{{"ipv4", "198.51.100.1"}, {"ipv6", ka}}}},
		Client: []xmlClient{{
			Addrs:     []xmlAddr{{"ipv4", "203.0.113.7"}, {"ipv6", "2001:0db8:0000:0001:0000:0000:0000:0002"}, {"dn", "alice.broker.example.net"}},
			Router:    []xmlRouter{{Prefix: []xmlPrefix{{"56", "2001:0db8:1234:5600:0000:0000:0000:0000"}}}},
			Keepalive: []xmlKeepalive{{Interval: "30", Addrs: []xmlAddr{{"ipv6", ka}}}},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// Each construct of the subset, with the value it must produce.
func TestParseXMLTunnelConstructs(t *testing.T) {
	tests := []struct {
		name, doc string
		want      xmlTunnel
	}{
		{"declaration, comments, single quotes",
			"<?xml version='1.0' encoding=\"utf-8\" standalone='yes'?>\n<!-- hi -->\n<tunnel action='info'><!-- x --></tunnel>\n<!---->",
			xmlTunnel{}}, // replaced below: trailing comment is refused
		{"predefined entities and references",
			`<tunnel action="a&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F600;"/>`,
			xmlTunnel{Action: "a<>&'\"AB\U0001F600"}},
		{"CDATA and split character data",
			"<tunnel><broker><address type=\"dn\">a<![CDATA[<b>&amp;]]><!-- c -->d<x>ignored</x>e</address></broker></tunnel>",
			xmlTunnel{Broker: []xmlAddrList{{Addrs: []xmlAddr{{"dn", "a<b>&amp;de"}}}}}},
		{"line ends normalised, references not",
			"<tunnel action=\"a\r\nb\rc&#13;\"><broker><address>x\r\ny<![CDATA[\r]]></address></broker></tunnel>",
			xmlTunnel{Action: "a\nb\nc\r", Broker: []xmlAddrList{{Addrs: []xmlAddr{{"", "x\ny\n"}}}}}},
		{"unknown elements and attributes skipped, BOM",
			"\uFEFF<tunnel x=\"1\" mtu = \"1400\" ><u><server/></u><server a='b'></server ></tunnel\t>",
			xmlTunnel{MTU: "1400", Server: []xmlServer{{}}}},
		{"repeated elements kept in order",
			"<tunnel><client><dns_server><address type=\"ipv6\">a</address></dns_server><dns_server/><router/><router><prefix length=\"1\">p</prefix></router></client></tunnel>",
			xmlTunnel{Client: []xmlClient{{DNSServer: []xmlAddrList{{Addrs: []xmlAddr{{"ipv6", "a"}}}, {}}, Router: []xmlRouter{{}, {Prefix: []xmlPrefix{{"1", "p"}}}}}}}},
	}
	tests[0].doc = strings.TrimSuffix(tests[0].doc, "<!---->")
	tests[0].want = xmlTunnel{Action: "info"}
	for _, tt := range tests {
		got, err := parseXMLTunnel([]byte(tt.doc))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tt.name, *got, tt.want)
		}
	}
}

// Refused documents: the error names the problem and where it is.
func TestParseXMLTunnelRefuses(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"", "no <tunnel> element"},
		{" \r\n<!-- only a comment -->\n", "no <tunnel> element"},
		{"<!DOCTYPE tunnel><tunnel/>", "line 1, column 1: DOCTYPE not allowed before <tunnel>"},
		{"<tunnel><!DOCTYPE x></tunnel>", "line 1, column 9: DOCTYPE not allowed in <tunnel>"},
		{"<tunnel><?php x?></tunnel>", "line 1, column 9: processing instruction not allowed"},
		{"\n <?xml version=\"1.0\"?><tunnel/>", "line 2, column 2: processing instruction not allowed"},
		{"<?xml?><tunnel/>", "XML declaration without a version"},
		{"<?xml version=\"1.1\"?><tunnel/>", "unsupported version \"1.1\""},
		{"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><tunnel/>", "unsupported encoding"},
		{"<?xml encoding=\"utf-8\" version=\"1.0\"?><tunnel/>", "unexpected \"encoding\""},
		{"<?xml version=\"1.0\" version=\"1.0\"?><tunnel/>", "unexpected \"version\""},
		{"text<tunnel/>", "line 1, column 1: character data not allowed before <tunnel>"},
		{"<tunnel a=b/>", "line 1, column 11: attribute value must be in quotes"},
		{"<tunnel a/>", "line 1, column 10: expected = after attribute name"},
		{"<tunnel a=\"1\"b=\"2\"/>", "line 1, column 14: expected white space before attribute"},
		{"<tunnel type=\"a\" type=\"b\"/>", "line 1, column 18: duplicate attribute type in <tunnel>"},
		{"<tunnel a=\"<\"/>", "< inside an attribute value"},
		{"<tunnel a=\"x/>", "unterminated attribute value"},
		{"<tunnel>\n <server></client>\n</tunnel>", "line 2, column 10: <server> closed by </client>"},
		{"<tunnel><server>", "line 1, column 9: unexpected end of input: <server> not closed"},
		{"<tunnel/>\r\n<tunnel/>", "line 2, column 1: unexpected content after </tunnel>"},
		{"<tunnel/><!-- c -->", "unexpected content after </tunnel>"},
		{"<tunnel/>x", "unexpected content after </tunnel>"},
		{"<offer/>", "root element <offer>, want <tunnel>"},
		{"<tunnel>&nbsp;</tunnel>", "invalid character reference \"&nbsp;\""},
		{"<tunnel>&amp</tunnel>", "invalid character reference \"&amp</tunnel>\""},
		{"<tunnel>&#xD800;</tunnel>", "invalid character reference"},
		{"<tunnel>&#0;</tunnel>", "invalid character reference"},
		{"<tunnel>&#x110000;</tunnel>", "invalid character reference"},
		{"<tunnel>&#X41;</tunnel>", "invalid character reference"},
		{"<tunnel>&#;</tunnel>", "invalid character reference"},
		{"<tunnel>a]]>b</tunnel>", "line 1, column 10: ]]> outside a CDATA section"},
		{"<tunnel><![CDATA[x</tunnel>", "unterminated CDATA section"},
		{"<tunnel><!-- a -- b --></tunnel>", `"--" inside a comment`},
		{"<tunnel><!-- a </tunnel>", "unterminated comment"},
		{"<x:tunnel/>", "line 1, column 3: unsupported character in name"},
		{"<tunnel x:a=\"1\"/>", "unsupported character in name"},
		{"<tünnel/>", "unsupported character in name"},
		{"<1tunnel/>", "expected a name"},
		{"< tunnel/>", "expected a name"},
		{"<tunnel/ >", "expected /> in <tunnel>"},
		{"<tunnel>\n\xff</tunnel>", "line 2, column 1: invalid UTF-8"},
		{"<tunnel>\x01</tunnel>", "character '\\x01' not allowed"},
		{"<tunnel>\uFFFE</tunnel>", "not allowed in XML"},
		{strings.Repeat("<a>", 8) + "<b/>" + strings.Repeat("</a>", 8), "line 1, column 25: elements nested too deeply (more than 8 levels)"},
	}
	for _, tt := range tests {
		got, err := parseXMLTunnel([]byte(tt.doc))
		if err == nil {
			t.Errorf("%q accepted: %+v", tt.doc, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %q, want it to contain %q", tt.doc, err, tt.want)
		}
	}
	// Eight levels is the limit, not one less.
	if _, err := parseXMLTunnel([]byte("<tunnel>" + strings.Repeat("<a>", 7) + strings.Repeat("</a>", 7) + "</tunnel>")); err != nil {
		t.Errorf("depth 8 refused: %v", err)
	}
}

// decodeTunnelXML keeps the ProtocolError wrapping callers match on.
func TestDecodeTunnelXMLErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"<tunnel>\x00</tunnel>": "tsp offer: NUL byte at offset 8 of the XML",
		"  ":                    "tsp offer: no <tunnel> element",
		"<tunnel><a></tunnel>":  "tsp offer: XML line 1, column 12: <a> closed by </tunnel>",
	} {
		_, err := decodeTunnelXML("offer", []byte(doc))
		if !errors.Is(err, ErrMalformed) || err.Error() != want {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

// xmlDiffSeeds: every offer and redirect document the other tests use, the
// spec examples, and hostile variants of them.
func xmlDiffSeeds() []string {
	offer := offerXML(V6UDPV4, "")
	seeds := []string{
		specOffer, specRedirect, offer,
		offerXML(V6V4, ""), offerXML(V4V6, ""), offerXML("v6gre", ""),
		offerXML(V6UDPV4, "  <address type=\"dn\">Alice.Broker.example.net</address>\r\n"+
			"  <dns_server><address type=\"ipv6\">2001:db8::53</address></dns_server>\r\n"+
			"  <router>\r\n   <prefix length=\"56\">2001:0db8:1234:5600:0000:0000:0000:0000</prefix>\r\n  </router>\r\n"),
		offerXML(V6V4, "  <router><prefix length=\"48\">2001:0db8:1234:5678:0000:0000:0000:0001</prefix></router>\r\n"),
		offerXML(V6UDPV4, "<router><prefix length=\"129\">2001:db8::</prefix></router>"),
		offer[:200],
		"<tunnel action=\"info\">\r\n <broker>\r\n  <address type=\"dn\">b1.example.net</address>\r\n" +
			"  <address type=\"ipv6\">2001:db8::20</address>\r\n  <address type=\"ipv4\">198.51.100.20</address>\r\n </broker>\r\n</tunnel>\r\n",
		"<tunnel action=\"info\"><broker><address type=\"dn\">c</address></broker></tunnel>\r\n",
		" <tunnel><broker/></tunnel>\r\n",
		"<tunnel action=\"info\" type=\"v6udpv4\" lifetime=\"60\"><server><address type=\"ipv4\">127.0.0.1</address>" +
			"<address type=\"ipv6\">2001:db8:ab::1</address></server><client><address type=\"ipv4\">127.0.0.1</address>" +
			"<address type=\"ipv6\">2001:db8:ab::2</address></client></tunnel>\r\n",
		"<tunnel action=\"info\"><broker>" + strings.Repeat("<address type=\"ipv4\">198.51.100.20</address>", 60) + "</broker></tunnel>",
		// hostile
		offerXML(V6UDPV4, strings.Repeat("<a>", 50)+strings.Repeat("</a>", 50)),
		"<tunnel>" + strings.Repeat("<a>", 7) + strings.Repeat("</a>", 7) + "</tunnel>",
		"<tunnel>" + strings.Repeat("<a>", 8) + strings.Repeat("</a>", 8) + "</tunnel>",
		offer + "<tunnel/>", offer + "garbage", offer + "<!-- c -->", offer + "\u00a0",
		"\uFEFF" + offer, "garbage" + offer, "<!-- c -->" + offer,
		strings.ReplaceAll(offer, "\r\n", "\n"), strings.ReplaceAll(offer, "\r\n", "\r"),
		strings.Replace(offer, "203.0.113.7", "203.0.\x00113.7", 1),
		strings.Replace(offer, "<client>", "<client>\xff\xfe", 1),
		strings.Replace(offer, `type="ipv4"`, `type=ipv4`, 1),
		strings.Replace(offer, `type="ipv4"`, `type='ipv4'`, 1),
		strings.Replace(offer, `lifetime="604800"`, `lifetime="604800" lifetime="1"`, 1),
		strings.Replace(offer, `lifetime="604800"`, `lifetime="604800"mtu="1400"`, 1),
		strings.Replace(offer, "</server>", "</client>", 1),
		strings.Replace(offer, "198.51.100.1", "198.51.&#49;00.1", 1),
		strings.Replace(offer, "198.51.100.1", "198.51.&#x31;00.1&lt;&gt;&amp;&apos;&quot;", 1),
		strings.Replace(offer, "198.51.100.1", "&#xD800;", 1), strings.Replace(offer, "198.51.100.1", "&#0;", 1),
		strings.Replace(offer, "198.51.100.1", "&#x110000;", 1), strings.Replace(offer, "198.51.100.1", "&nbsp;", 1),
		strings.Replace(offer, "198.51.100.1", "&amp", 1), strings.Replace(offer, "198.51.100.1", "&#13;\r\n\r&#10;", 1),
		strings.Replace(offer, `"604800"`, "\"6048\r\n00\r\"", 1), strings.Replace(offer, "198.51.100.1", "<![CDATA[\r\n\r]]>", 1),
		strings.Replace(offer, "198.51.100.1", "198.51.<![CDATA[100]]>.1<!-- c -->", 1),
		strings.Replace(offer, "198.51.100.1", "198.51]]>100.1", 1),
		strings.Replace(offer, "<server>", "<x:server>", 1),
		strings.Replace(offer, "<server>", "<server xmlns=\"urn:x\" xmlns:a=\"urn:a\" a:b=\"c\">", 1),
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + offer,
		"<?xml version='1.0' standalone='no' ?>" + offer,
		"<?xml version=\"1.0\" encoding=\"latin1\"?>" + offer,
		"<?xml?>" + offer, "<?php echo?>" + offer, "\n<?xml version=\"1.0\"?>" + offer,
		"<!DOCTYPE tunnel [<!ENTITY x \"y\">]>" + offer,
		"<tunnel><?pi x?><!DOCTYPE x></tunnel>",
		"<tunnel a=\"1>2 ]]> &#9;\tb\"/>",
		"<tunnel a=\"&lt;\" b='\"'/>", "<tunnel/ >", "<tunnel></tunnel >", "</tunnel>", "<tunnel>",
		"<tunnel>\uFFFE</tunnel>", "<tunnel>\x0c</tunnel>", "<tunnel/>\x0c",
		"<tunnel><server><address type=\"ipv4\">a<address>b</address>c</address></server></tunnel>",
	}
	return seeds
}

// FuzzTunnelXMLDiff checks tsp/xml.go against encoding/xml: whatever it
// accepts, encoding/xml accepts with the same result; whatever encoding/xml
// accepts within the supported subset, it accepts too.
func FuzzTunnelXMLDiff(f *testing.F) {
	for _, s := range xmlDiffSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseXMLTunnel(b)
		ref, refErr := refDecodeTunnelXML(b)
		if err == nil {
			if refErr != nil {
				t.Fatalf("accepted %q, which encoding/xml refuses: %v", b, refErr)
			}
			if !reflect.DeepEqual(got, ref) {
				t.Fatalf("%q decoded differently:\n got %+v\n ref %+v", b, got, ref)
			}
			return
		}
		if refErr == nil && inXMLSubset(b) {
			t.Fatalf("refused %q (%v), which is in the subset and encoding/xml accepts", b, err)
		}
	})
}

// The differential test means something only if the seeds exercise both
// sides: documents both accept and subset documents the classifier admits.
func TestTunnelXMLDiffSeedsCoverBothWays(t *testing.T) {
	var both, refOnly, subset int
	for _, s := range xmlDiffSeeds() {
		_, err := parseXMLTunnel([]byte(s))
		_, refErr := refDecodeTunnelXML([]byte(s))
		switch {
		case err == nil && refErr == nil:
			both++
		case err != nil && refErr == nil:
			refOnly++
		}
		if inXMLSubset([]byte(s)) {
			subset++
		}
	}
	t.Logf("seeds: %d accepted by both, %d only by encoding/xml, %d in the subset", both, refOnly, subset)
	if both < 15 || refOnly < 5 || subset < 15 {
		t.Fatalf("seeds: %d accepted by both, %d only by encoding/xml, %d in the subset", both, refOnly, subset)
	}
}

// Duplicates are caught in long attribute lists too, where a set is used.
func TestParseXMLTunnelManyAttributes(t *testing.T) {
	var b strings.Builder
	b.WriteString("<tunnel")
	for i := range 3000 {
		fmt.Fprintf(&b, " a%d='%d'", i, i)
	}
	if _, err := parseXMLTunnel([]byte(b.String() + "/>")); err != nil {
		t.Fatalf("3000 distinct attributes: %v", err)
	}
	for _, dupOf := range []int{0, 14, 15, 16, 2999} {
		doc := b.String() + fmt.Sprintf(" a%d='x'/>", dupOf)
		if _, err := parseXMLTunnel([]byte(doc)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("duplicate attribute a%d ", dupOf)) {
			t.Errorf("duplicate of attribute %d: %v", dupOf, err)
		}
	}
	// The 17th attribute duplicating one of the first 16: the switch to the set.
	doc := "<tunnel"
	for i := range 16 {
		doc += fmt.Sprintf(" a%d=''", i)
	}
	if _, err := parseXMLTunnel([]byte(doc + " a7=''/>")); err == nil || !strings.Contains(err.Error(), "duplicate attribute a7 ") {
		t.Errorf("17th attribute duplicating the 8th: %v", err)
	}
}

// BenchmarkTunnelXML decodes the spec's offer with tsp/xml.go and with the
// encoding/xml reference in the same run and reports the speed ratio.
func BenchmarkTunnelXML(b *testing.B) {
	doc := []byte(specOffer)
	var own, ref time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := parseXMLTunnel(doc); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := refDecodeTunnelXML(doc); err != nil {
			b.Fatal(err)
		}
		own, ref = own+t1.Sub(t0), ref+time.Since(t1)
	}
	b.ReportMetric(float64(own.Nanoseconds())/float64(b.N), "own-ns/doc")
	b.ReportMetric(float64(ref.Nanoseconds())/float64(b.N), "encxml-ns/doc")
	b.ReportMetric(float64(ref)/float64(own), "speedup")
}
