package config

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// checkIssues: every issue is inside the file and says something.
func checkIssues(t *testing.T, data []byte, list Issues) {
	t.Helper()
	lines := 1 + bytes.Count(data, []byte("\n"))
	for _, i := range list {
		if i.Line < 0 || i.Line > lines || i.Msg == "" || i.File != "fuzz" {
			t.Fatalf("bad issue %+v (file has %d lines)", *i, lines)
		}
	}
}

// FuzzLegacy: no gogoc.conf makes the reader panic, problems are located
// inside the file, and whatever is accepted imports to UCI unchanged.
func FuzzLegacy(f *testing.F) {
	for _, text := range legacyFiles {
		f.Add([]byte(text))
	}
	f.Add([]byte("server=b\nauth_method=anonymous\nretry_delay=99999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, warns, err := Parse("fuzz", data, FormatLegacy)
		checkIssues(t, data, warns)
		if err != nil {
			var list Issues
			if !errors.As(err, &list) || len(list) == 0 || c != nil {
				t.Fatalf("error %T %v with config %v", err, err, c != nil)
			}
			checkIssues(t, data, list)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		back, _, err := Parse("fuzz", importUCI(t, c), FormatUCI)
		if err != nil {
			t.Fatalf("import output refused: %v", err)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("import changed the config\n%+v\n%+v", *c, *back)
		}
	})
}

// FuzzConfigUCI: the same for /etc/config/gogoc.
func FuzzConfigUCI(f *testing.F) {
	f.Add([]byte("config gogoc 'main'\n\toption server 'b.example.net'\n\toption auth_method 'anonymous'\n\tlist dns_servers_ra '2001:db8::1'\n"))
	f.Add([]byte("config gogoc\n\toption server '[2001:db8::1]:1'\n\toption userid 'u'\n\toption passwd 'it'\\''s'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, warns, err := Parse("fuzz", data, FormatUCI)
		checkIssues(t, data, warns)
		if err != nil {
			var list Issues
			if !errors.As(err, &list) || len(list) == 0 || c != nil {
				t.Fatalf("error %T %v with config %v", err, err, c != nil)
			}
			checkIssues(t, data, list)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		back, _, err := Parse("fuzz", importUCI(t, c), FormatUCI)
		if err != nil || !reflect.DeepEqual(c, back) {
			t.Fatalf("write and read changed the config: %v", err)
		}
	})
}
