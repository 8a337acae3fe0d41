package uci

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Write emits f as a UCI file that libuci and Parse read back as f: names
// bare, section names and values single-quoted, an apostrophe inside a value
// closing the quote, escaped and reopening:
//
//	option passwd 'it'\''s'
//
// It writes nothing when f cannot be represented: invalid names or types, a
// duplicate section or option name, a plain option without exactly one
// value, an empty list, or a NUL byte in a value. A plain option with an
// empty value is written with an empty quoted value, which libuci reads as
// "unset"; files built with Set never hold one.
func Write(w io.Writer, f *File) error {
	if err := check(f); err != nil {
		return err
	}
	var b bytes.Buffer
	if f.Package != "" {
		b.WriteString("package ")
		b.WriteString(f.Package)
		b.WriteByte('\n')
	}
	for i, s := range f.Sections {
		if i > 0 || f.Package != "" {
			b.WriteByte('\n')
		}
		b.WriteString("config ")
		writeType(&b, s.Type)
		if s.Name != "" {
			b.WriteByte(' ')
			quoteTo(&b, s.Name)
		}
		b.WriteByte('\n')
		for _, o := range s.Options {
			kw := "\toption "
			if o.List {
				kw = "\tlist "
			}
			for _, v := range o.Values {
				b.WriteString(kw)
				b.WriteString(o.Name)
				b.WriteByte(' ')
				quoteTo(&b, v)
				b.WriteByte('\n')
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Quote returns v as one UCI word that reads back as exactly v, for tools
// that emit UCI lines themselves.
func Quote(v string) string {
	var b bytes.Buffer
	quoteTo(&b, v)
	return b.String()
}

func quoteTo(b *bytes.Buffer, v string) {
	b.WriteByte('\'')
	for {
		i := strings.IndexByte(v, '\'')
		if i < 0 {
			break
		}
		b.WriteString(v[:i])
		// Close the quote, add an escaped ', reopen: the pieces join.
		b.WriteString(`'\''`)
		v = v[i+1:]
	}
	b.WriteString(v)
	b.WriteByte('\'')
}

// writeType writes a section type bare when that is safe; a type may hold
// any printable character, and # ; ' " \ would change how it reads.
func writeType(b *bytes.Buffer, t string) {
	if strings.ContainsAny(t, `#;'"\`) {
		quoteTo(b, t)
		return
	}
	b.WriteString(t)
}

func check(f *File) error {
	if f.Package != "" && !validPackage(f.Package) {
		return fmt.Errorf("uci: invalid package name %q", f.Package)
	}
	named := make(map[string]bool)
	for i, s := range f.Sections {
		if !validType(s.Type) {
			return fmt.Errorf("uci: section %d: invalid type %q", i, s.Type)
		}
		if s.Name != "" {
			if !validName(s.Name) {
				return fmt.Errorf("uci: section %d: invalid name %q", i, s.Name)
			}
			if named[s.Name] {
				return fmt.Errorf("uci: section %q appears twice", s.Name)
			}
			named[s.Name] = true
		}
		seen := make(map[string]bool, len(s.Options))
		for _, o := range s.Options {
			if !validName(o.Name) {
				return fmt.Errorf("uci: section %d: invalid option name %q", i, o.Name)
			}
			if seen[o.Name] {
				return fmt.Errorf("uci: section %d: option %q appears twice", i, o.Name)
			}
			seen[o.Name] = true
			if len(o.Values) == 0 || !o.List && len(o.Values) != 1 {
				return fmt.Errorf("uci: section %d: option %q has %d values", i, o.Name, len(o.Values))
			}
			for _, v := range o.Values {
				// Values are not quoted in this message: they may be secret.
				if strings.IndexByte(v, 0) >= 0 {
					return fmt.Errorf("uci: section %d: option %q: value holds a NUL byte", i, o.Name)
				}
			}
		}
	}
	return nil
}
