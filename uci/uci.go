// Package uci reads and writes OpenWrt UCI configuration files with the
// grammar of libuci (file.c), so that a file edited by LuCI or `uci set`
// means the same thing to gogoc as it does to the rest of the router.
//
// Grammar, per physical line, statements separated by ';':
//
//	package <name>
//	config <type> [<name>]
//	option <name> [<value>]
//	list <name> [<value>]
//
// The keywords may be shortened to p, c, o and l as libuci allows. A word is
// single-quoted (literal, may span lines), double-quoted (backslash escapes
// the next byte, may span lines) or bare (backslash escapes the next byte);
// adjacent pieces join ('ab'"cd"ef is "abcdef"), and a backslash at the end
// of a line continues the word on the next one. Outside quotes '#' starts a
// comment, also in the middle of a word, as in libuci.
//
// Semantics follow libuci's strict mode: an option statement with an empty
// value removes the option (an empty quoted value leaves it unset), a list
// statement appends (turning an earlier plain option into the list's first item), a
// later option statement replaces the earlier one, and a named section that
// appears twice is one section whose type must not change.
//
// Deliberate differences from libuci, both where libuci loses data silently:
// a bare word directly followed by ';' (option a b;option c d) ends the word
// and the next statement is read, where libuci drops the rest of the line;
// and a ';' at the end of a line is accepted, where libuci reports an
// invalid command.
package uci

import (
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

// Section returns the section that ref names: a section name ("main") or
// libuci's extended form "@type[N]", where N counts sections of that type
// from 0, or from the end when negative (@gogoc[-1] is the last one); an empty
// type ("@[0]") counts sections of any type. It returns nil when there is no
// such section or ref is malformed.
func (f *File) Section(ref string) *Section {
	if !strings.HasPrefix(ref, "@") {
		for _, s := range f.Sections {
			if s.Name != "" && s.Name == ref {
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

// Set gives the option one value, replacing any option or list of that name.
// An empty value removes the option, as in libuci.
func (s *Section) Set(name, value string) { s.set(name, value, 0) }

// AddList appends a value to the list called name; an existing plain option
// of that name becomes the list's first item.
func (s *Section) AddList(name, value string) { s.addList(name, value, 0) }

func (s *Section) set(name, value string, line int) {
	i := s.index(name)
	if i >= 0 {
		o := s.Options[i]
		// libuci leaves an option alone when it is set to the value it has.
		if value != "" && !o.List && o.Values[0] == value {
			return
		}
		s.remove(i)
	}
	if value == "" {
		return
	}
	// A replaced option moves to the end, as libuci frees and re-adds it.
	s.Options = append(s.Options, &Option{Name: name, Values: []string{value}, Lines: []int{line}})
}

func (s *Section) addList(name, value string, line int) {
	i := s.index(name)
	if i < 0 {
		s.Options = append(s.Options, &Option{Name: name, List: true, Values: []string{value}, Lines: []int{line}})
		return
	}
	o := s.Options[i]
	if !o.List {
		// libuci builds a new list from the old string and puts it last.
		s.remove(i)
		o = &Option{Name: name, List: true, Values: o.Values, Lines: o.Lines}
		s.Options = append(s.Options, o)
	}
	o.Values = append(o.Values, value)
	o.Lines = append(o.Lines, line)
}

func (s *Section) remove(i int) {
	s.Options = append(s.Options[:i], s.Options[i+1:]...)
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
