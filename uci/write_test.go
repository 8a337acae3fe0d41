package uci

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// shape is dump without line numbers: what a round trip must keep.
func shape(f *File) string {
	g := &File{Package: f.Package}
	for _, s := range f.Sections {
		t := &Section{Type: s.Type, Name: s.Name}
		for _, o := range s.Options {
			t.Options = append(t.Options, &Option{Name: o.Name, List: o.List, Values: o.Values, Lines: make([]int, len(o.Values))})
		}
		g.Sections = append(g.Sections, t)
	}
	return dump(g)
}

func TestWrite(t *testing.T) {
	var f File
	f.Package = "gogoc"
	s := f.AddSection("gogoc", "main")
	s.Set("enabled", "1")
	s.Set("passwd", "it's a \"secret\" #1; \\o/")
	s.Set("motd", "two\nlines")
	s.AddList("dns_servers_ra", "2001:db8::53")
	s.AddList("dns_servers_ra", "")
	f.AddSection("odd#type;'x'", "")

	var b bytes.Buffer
	if err := Write(&b, &f); err != nil {
		t.Fatal(err)
	}
	want := `package gogoc

config gogoc 'main'
	option enabled '1'
	option passwd 'it'\''s a "secret" #1; \o/'
	option motd 'two
lines'
	list dns_servers_ra '2001:db8::53'
	list dns_servers_ra ''

config 'odd#type;'\''x'\'''
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	g, err := Parse("w", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if shape(g) != shape(&f) {
		t.Errorf("read back\n%s\nwant\n%s", shape(g), shape(&f))
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          `''`,
		"plain":     `'plain'`,
		"it's":      `'it'\''s'`,
		"'":         `''\'''`,
		"a\nb \\ #": "'a\nb \\ #'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
		f, err := Parse("q", []byte("config a\nlist x "+Quote(in)+"\n"))
		if err != nil || f.Sections[0].Options[0].Values[0] != in {
			t.Errorf("Quote(%q) does not read back: %v", in, err)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	build := func(mod func(f *File)) *File {
		f := &File{}
		f.AddSection("gogoc", "main").Set("x", "y")
		mod(f)
		return f
	}
	tests := []struct {
		name string
		f    *File
		want string
	}{
		{"bad package", build(func(f *File) { f.Package = "a b" }), "invalid package name"},
		{"bad type", build(func(f *File) { f.Sections[0].Type = "a b" }), "invalid type"},
		{"empty type", build(func(f *File) { f.Sections[0].Type = "" }), "invalid type"},
		{"bad section name", build(func(f *File) { f.Sections[0].Name = "a-b" }), "invalid name"},
		{"duplicate section", build(func(f *File) {
			f.Sections = append(f.Sections, &Section{Type: "gogoc", Name: "main"})
		}), "appears twice"},
		{"bad option name", build(func(f *File) { f.Sections[0].Options[0].Name = "x.y" }), "invalid option name"},
		{"duplicate option", build(func(f *File) {
			f.Sections[0].Options = append(f.Sections[0].Options, &Option{Name: "x", Values: []string{"z"}})
		}), "appears twice"},
		{"empty list", build(func(f *File) {
			f.Sections[0].Options = append(f.Sections[0].Options, &Option{Name: "l", List: true})
		}), "has 0 values"},
		{"option with two values", build(func(f *File) { f.Sections[0].Options[0].Values = []string{"a", "b"} }), "has 2 values"},
		{"NUL", build(func(f *File) { f.Sections[0].Options[0].Values = []string{"secret\x00"} }), "NUL byte"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		err := Write(&b, tt.f)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: wrote %q before failing", tt.name, b.String())
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error quotes a value: %v", tt.name, err)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWritePassesWriterError(t *testing.T) {
	var f File
	f.AddSection("a", "")
	if err := Write(failWriter{}, &f); err == nil || err.Error() != "disk full" {
		t.Errorf("got %v", err)
	}
}

// Files as people and LuCI write them must survive parse, write, parse.
func TestRoundTrip(t *testing.T) {
	files := []string{
		"config gogoc 'main'\n\toption enabled '0'\n\toption server 'broker.example.net'\n",
		"# comment\nconfig gogoc\n  option passwd \"p'w \\\"x\\\"\"\n  list dns_server ns1 ; list dns_server ns2\n",
		"package net\nconfig interface 'lan'\n\toption proto 'static'\n\tlist ipaddr '192.168.1.1/24'\n\nconfig interface 'wan'\n\toption proto 'dhcp'\n",
		"config a\noption text 'multi\nline\n'\noption x 'it'\\''s'\nlist l ''\n",
		"config 'we;ird#type'\noption x y\n",
	}
	for _, in := range files {
		f, err := Parse("in", []byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var b bytes.Buffer
		if err := Write(&b, f); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		g, err := Parse("out", b.Bytes())
		if err != nil {
			t.Fatalf("%q: reading back %q: %v", in, b.String(), err)
		}
		if shape(g) != shape(f) {
			t.Errorf("%q: read back\n%s\nwant\n%s", in, shape(g), shape(f))
		}
	}
}
