// Package uci reads and writes OpenWrt UCI configuration files with the
// grammar of libuci (file.c, list.c), so that a file edited by LuCI or `uci
// set` means the same thing to gogoc as it does to `uci get` and to the
// shell scripts that read it through `uci export`.
//
// Grammar, per line, statements separated by ';':
//
//	package <name>
//	config <type> [<name>]
//	option <name> [<value>]
//	list <name> [<value>]
//
// The keywords may be shortened to p, c, o and l, and must be followed by a
// space or a tab. A word is single-quoted (literal, may span lines),
// double-quoted (backslash escapes the next byte, may span lines) or bare
// (backslash escapes the next byte); adjacent pieces join ('ab'"cd"ef is
// "abcdef"), and a backslash at the end of a line continues the word on the
// next one. Outside quotes '#' starts a comment, also in the middle of a
// word.
//
// Semantics are libuci's while it loads a file in strict mode (the mode of
// `uci get` and of `uci export`): an option statement with an empty value
// does nothing (uci_set on a pointer that was never looked up), a later
// option statement replaces the value in the option's place, a list
// statement appends (turning an earlier plain option into the list's first
// item, in the same place), and a named section that appears twice is one
// section whose type must not change. An anonymous section has libuci's
// generated name (cfgNNhhhh) too, and a later `config` with that name
// reopens it.
//
// libuci's ';' is not a plain separator: it ends the line when it directly
// follows an unquoted word, is an empty argument where an argument may
// stand, and leaves an "invalid command" when nothing follows it. The parser
// follows that, reports what libuci reports as an error, and also reports
// the one case where libuci silently drops the rest of a line, so a file
// this package accepts reads the same everywhere on the router.
package uci

import (
	"fmt"
	"strconv"
	"strings"
)

// File is a parsed UCI package: its sections in file order.
type File struct {
	// Package is the name given by a `package` statement, if any. libuci
	// ignores it when loading a file by name, and so does this package.
	Package  string
	Sections []*Section
}

// Section is one `config` block.
type Section struct {
	Type string
	// Name is empty for an anonymous section; address those as @type[N].
	Name string
	// Line is where the section was first opened (0 when built in code).
	Line    int
	Options []*Option
}

// Option is an option or a list, with the values in file order.
type Option struct {
	Name string
	// List is true for a value made by `list` statements.
	List bool
	// Values holds exactly one value for a plain option, one or more for a
	// list.
	Values []string
	// Lines[i] is the line where Values[i] was given (0 when built in code).
	Lines []int
}

// Value returns the value of a plain option, or a list's last item.
func (o *Option) Value() string {
	if len(o.Values) == 0 {
		return ""
	}
	return o.Values[len(o.Values)-1]
}

// Line returns where the option was (last) given.
func (o *Option) Line() int {
	if len(o.Lines) == 0 {
		return 0
	}
	return o.Lines[len(o.Lines)-1]
}

// Section returns the section that ref names: a section name ("main"), the
// name libuci generated for an anonymous section ("cfg01b606"), or libuci's
// extended form "@type[N]", where N counts sections of that type from 0, or
// from the end when negative (@gogoc[-1] is the last one); an empty type
// ("@[0]") counts sections of any type. It returns nil when there is no
// such section or ref is malformed.
func (f *File) Section(ref string) *Section {
	if !strings.HasPrefix(ref, "@") {
		if ref == "" {
			return nil
		}
		for i, s := range f.Sections {
			if s.Name == ref || s.Name == "" && autoName(i+1, s.Type) == ref {
				return s
			}
		}
		return nil
	}
	typ, idxs, ok := strings.Cut(ref[1:], "[")
	if !ok || !strings.HasSuffix(idxs, "]") || (typ != "" && !validType(typ)) {
		return nil
	}
	idx, err := strconv.Atoi(idxs[:len(idxs)-1])
	if err != nil {
		return nil
	}
	match := func(s *Section) bool { return typ == "" || s.Type == typ }
	if idx < 0 {
		for _, s := range f.Sections {
			if match(s) {
				idx++
			}
		}
		if idx < 0 {
			return nil
		}
	}
	for _, s := range f.Sections {
		if !match(s) {
			continue
		}
		if idx == 0 {
			return s
		}
		idx--
	}
	return nil
}

// ID returns the name libuci knows section i by: its own name, or for an
// anonymous section the one uci_fixup_section gives it when it is created
// (what `uci show -X` prints and `uci -n export` writes).
func (f *File) ID(i int) string {
	s := f.Sections[i]
	if s.Name != "" {
		return s.Name
	}
	return autoName(i+1, s.Type)
}

// autoName is uci_fixup_section's name for the n-th section created in the
// package when it is anonymous: "cfg", n in hex (two digits or more), and
// the low 16 bits of the djb hash of its type. Options are not hashed: the
// section has none yet when the name is made. Sections are never removed
// or recreated here, so n is the section's position plus one.
func autoName(n int, typ string) string {
	h := uint32(5381)
	for i := 0; i < len(typ); i++ {
		// libuci adds a char; types are ASCII, so its sign never matters.
		h = h*33 + uint32(typ[i])
	}
	h &= 0x7fffffff
	return fmt.Sprintf("cfg%02x%04x", n, h%(1<<16))
}

// AddSection appends a section, or, when a section with that name exists,
// returns it with its type set to typ (what `uci set pkg.name=type` does).
func (f *File) AddSection(typ, name string) *Section {
	return f.addSection(typ, name, 0)
}

func (f *File) addSection(typ, name string, line int) *Section {
	if name != "" {
		if s := f.Section(name); s != nil {
			s.Type = typ
			return s
		}
	}
	s := &Section{Type: typ, Name: name, Line: line}
	f.Sections = append(f.Sections, s)
	return s
}

// Option returns the option or list called name, or nil.
func (s *Section) Option(name string) *Option {
	if i := s.index(name); i >= 0 {
		return s.Options[i]
	}
	return nil
}

func (s *Section) index(name string) int {
	for i, o := range s.Options {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// Set gives the option one value in the option's place, replacing any
// option or list of that name; a new option goes last. An empty value
// removes the option, as `uci set pkg.sec.opt=` does (uci_set on a
// pointer that was looked up). In a file an empty value does nothing
// instead; Parse follows that.
func (s *Section) Set(name, value string) {
	if value == "" {
		if i := s.index(name); i >= 0 {
			s.Options = append(s.Options[:i], s.Options[i+1:]...)
		}
		return
	}
	s.set(name, value, 0)
}

// parsedSet is an option statement of a file: uci_set with a pointer
// filled in by the parser, never looked up, so an empty value leaves
// everything as it was.
func (s *Section) parsedSet(name, value string, line int) {
	if value == "" {
		return
	}
	s.set(name, value, line)
}

// set replaces in place: uci_set allocates the new option right after
// the old one and frees the old one (or copies a value of the same length
// over it), so the option keeps its position; an equal value is left
// alone, line included.
func (s *Section) set(name, value string, line int) {
	o := &Option{Name: name, Values: []string{value}, Lines: []int{line}}
	i := s.index(name)
	switch {
	case i < 0:
		s.Options = append(s.Options, o)
	case !s.Options[i].List && s.Options[i].Values[0] == value:
	default:
		s.Options[i] = o
	}
}

// AddList appends a value to the list called name; an existing plain option
// of that name becomes the list's first item, in the option's place.
func (s *Section) AddList(name, value string) { s.addList(name, value, 0) }

// addList is uci_add_list: a plain option turns into a list allocated
// right after it (so in its place) whose first item is the old value.
func (s *Section) addList(name, value string, line int) {
	i := s.index(name)
	if i < 0 {
		s.Options = append(s.Options, &Option{Name: name, List: true, Values: []string{value}, Lines: []int{line}})
		return
	}
	o := s.Options[i]
	o.List = true
	o.Values = append(o.Values, value)
	o.Lines = append(o.Lines, line)
}

// validName reports whether s is a valid section or option name: libuci
// allows only ASCII letters, digits and '_' (shell compatibility).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// validPackage is validName plus '-'.
func validPackage(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validType accepts any printable ASCII except space, as libuci does.
func validType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isSpace is C's isspace in the C locale, which libuci uses to end words.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
