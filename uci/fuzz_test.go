package uci

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzUCI: no input makes Parse panic; errors carry a line inside the file;
// whatever parses survives write and parse unchanged.
func FuzzUCI(f *testing.F) {
	f.Add([]byte("config gogoc 'main'\n\toption server 'broker.example.net'\n\tlist dns_servers_ra '2001:db8::1'\n"))
	f.Add([]byte("config a\noption x 'it'\\''s \"q\"'\noption y \"a\\\nb\"\n"))
	f.Add([]byte("config a b ; option x 'y';option z w\\;v;#c\nconfig a 'cfg01b606'\noption x ''\nlist x 1\n"))
	f.Add([]byte("c t\to\tx 'a'\"b\"\\\nc;\r\nl x;\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if file == nil {
			t.Fatal("nil file")
		}
		lines := 1 + bytes.Count(data, []byte("\n"))
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for _, e := range list {
				if e.Line < 1 || e.Line > lines {
					t.Fatalf("error line %d outside 1..%d: %v", e.Line, lines, e)
				}
			}
			return
		}
		for _, s := range file.Sections {
			for _, o := range s.Options {
				for _, l := range o.Lines {
					if l < 1 || l > lines {
						t.Fatalf("option line %d outside 1..%d", l, lines)
					}
				}
			}
		}
		var b bytes.Buffer
		if err := Write(&b, file); err != nil {
			t.Fatalf("parsed file not writable: %v", err)
		}
		again, err := Parse("again", b.Bytes())
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%s", err, b.String())
		}
		if shape(again) != shape(file) {
			t.Fatalf("round trip changed the file:\n%s\nwant\n%s", shape(again), shape(file))
		}
	})
}

// FuzzWrite: a file built with the API is written so that Parse gives the
// same file back, or Write refuses it because it cannot be represented.
func FuzzWrite(f *testing.F) {
	f.Add("gogoc", "main", "passwd", "it's a \"secret\"", "ns1", false)
	f.Add("gogoc", "", "dns_server", "a\nb", "", true)
	f.Fuzz(func(t *testing.T, typ, name, opt, v1, v2 string, list bool) {
		var file File
		s := file.AddSection(typ, name)
		if list {
			s.AddList(opt, v1)
			s.AddList(opt, v2)
		} else {
			s.Set(opt, v1)
			s.AddList("items", v2)
			s.AddList("items", v1)
		}
		file.AddSection(typ, "").Set("x", v2)

		// An option set to "" is not stored, so its name does not matter.
		representable := validType(typ) && (name == "" || validName(name)) &&
			(s.Option(opt) == nil || validName(opt)) &&
			!strings.Contains(v1, "\x00") && !strings.Contains(v2, "\x00")
		var b bytes.Buffer
		err := Write(&b, &file)
		if !representable {
			if err == nil {
				t.Fatalf("Write accepted an unrepresentable file:\n%s", b.String())
			}
			return
		}
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		got, err := Parse("w", b.Bytes())
		if err != nil {
			t.Fatalf("Parse: %v\n%s", err, b.String())
		}
		if shape(got) != shape(&file) {
			t.Fatalf("read back\n%s\nwant\n%s\nfile:\n%s", shape(got), shape(&file), b.String())
		}
	})
}
