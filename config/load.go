package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/uci"
)

// maxFileSize keeps a wrong -f (a log, a disk image) from being read whole.
const maxFileSize = 1 << 20

// Load reads the file at path as format f. It returns the configuration and
// its warnings (unknown keys and the like), or an error: Issues with every
// problem found, or an I/O error.
func Load(path string, f Format) (*Config, Issues, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("config: %s is larger than 1 MiB, not a configuration file", path)
	}
	return Parse(path, data, f)
}

// Parse reads a configuration from data; name is the file name used in
// messages. Results as for Load.
func Parse(name string, data []byte, f Format) (*Config, Issues, error) {
	s := &source{file: name, format: f, set: make(map[string]*setting), bad: make(map[string]bool)}
	switch f {
	case FormatUCI:
		s.stmt = "option"
		s.readUCI(data)
	case FormatLegacy:
		s.readLegacy(data)
	default:
		return nil, nil, fmt.Errorf("config: unknown format %d", f)
	}
	var c *Config
	if len(s.errs) == 0 {
		// A file that does not parse is not checked further: the keys
		// after a broken quote would only add noise.
		c = s.build()
	}
	warnings := s.tidy(s.warnings)
	if len(s.errs) > 0 {
		return nil, warnings, s.tidy(s.errs)
	}
	return c, warnings, nil
}

// setting is a key as the file gives it.
type setting struct {
	stmt   string // "option" or "list" in UCI, "" in gogoc.conf
	line   int
	values []value // one, except for a UCI list
}

type value struct {
	text string
	line int
}

// source collects what one file says and everything wrong with it.
type source struct {
	file   string
	format Format
	stmt   string // how an absent key would be written
	anchor int    // line blamed for a key the file lacks (the UCI section)
	set    map[string]*setting
	bad    map[string]bool // keys whose value was refused
	// secrets are the password texts of the file, removed from messages
	// whatever produced them.
	secrets []string

	warnings, errs Issues
}

func (s *source) add(list *Issues, line int, stmt, key, msg string) {
	*list = append(*list, &Issue{File: s.file, Line: line, Stmt: stmt, Key: key, Msg: msg})
}

func (s *source) readLegacy(data []byte) {
	for _, l := range readLegacy(string(data)) {
		def := lookupKey(l.key)
		switch {
		case l.key == "":
			s.add(&s.warnings, l.line, "", "", "no key before '=', line ignored")
			continue
		case def == nil && l.noEquals:
			// Not echoed: a line without '=' may be a stray password.
			s.add(&s.warnings, l.line, "", "", "no '=' and not a key, line ignored")
			continue
		case def == nil:
			s.unknown(l.line, "", l.key, "unknown key, ignored")
			continue
		}
		if l.key == "passwd" && l.value != "" {
			s.secrets = append(s.secrets, l.value)
		}
		if prev := s.set[l.key]; prev != nil {
			s.add(&s.warnings, l.line, "", l.key, fmt.Sprintf("set again, this line replaces line %d", prev.line))
		}
		if l.noEquals {
			s.add(&s.warnings, l.line, "", l.key, "no '=' on the line, the key keeps its default")
		}
		if v := l.value; len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			s.add(&s.warnings, l.line, "", l.key, "the quotes are part of the value: gogoc.conf has no quoting")
		}
		s.set[l.key] = &setting{line: l.line, values: []value{{l.value, l.line}}}
	}
}

// unknown warns about a key gogoc does not know, with the reason when the
// key is an old one that no longer does anything.
func (s *source) unknown(line int, stmt, key, msg string) {
	if why, ok := ignoredKeys[key]; ok {
		s.add(&s.warnings, line, stmt, key, why)
		return
	}
	if len(key) > 40 {
		key = key[:40] + "..."
	}
	if !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		// Keep control characters and broken UTF-8 off the terminal.
		key = strconv.Quote(key)
	}
	if lower := strings.ToLower(key); lower != key && lookupKey(lower) != nil {
		msg += fmt.Sprintf(" (did you mean %s? names are lower case)", lower)
	}
	s.add(&s.warnings, line, stmt, key, msg)
}

func (s *source) readUCI(data []byte) {
	f, err := uci.Parse(s.file, data)
	for _, sec := range f.Sections {
		if o := sec.Option("passwd"); o != nil {
			s.secrets = append(s.secrets, o.Values...)
		}
	}
	if err != nil {
		var list uci.ErrorList
		if !errors.As(err, &list) {
			s.add(&s.errs, 0, "", "", err.Error())
			return
		}
		for _, e := range list {
			stmt, msg := e.Stmt, e.Msg
			if e.Name == "" && stmt != "" {
				stmt, msg = "", stmt+": "+msg
			}
			s.add(&s.errs, e.Line, stmt, e.Name, msg)
		}
		return
	}
	sec := s.pickSection(f)
	if sec == nil {
		return
	}
	s.anchor = sec.Line
	for _, o := range sec.Options {
		stmt := "option"
		if o.List {
			stmt = "list"
		}
		def := lookupKey(o.Name)
		if def == nil {
			s.unknown(o.Line(), stmt, o.Name, "unknown option, ignored")
			continue
		}
		if o.List && !def.list {
			s.add(&s.errs, o.Lines[0], stmt, o.Name, "only dns_server, dns_servers_ra and ra_flags may be lists; write option "+o.Name)
			continue
		}
		st := &setting{stmt: stmt, line: o.Lines[0]}
		for i, v := range o.Values {
			st.values = append(st.values, value{v, o.Lines[i]})
		}
		s.set[o.Name] = st
	}
}

// pickSection finds `config gogoc 'main'`, the one section every OpenWrt
// script reads (gogoc.main.* in the init script, the hotplug hook, LuCI and
// `uci set`). Any other gogoc section, an unnamed one included, is read by
// none of them, so the daemon ignores it too, with a warning; a file whose
// only gogoc section is unnamed or otherwise named is refused rather than
// run on settings the scripts do not see.
func (s *source) pickSection(f *uci.File) *uci.Section {
	pick := f.Section("main")
	if pick != nil && pick.Type != "gogoc" {
		s.add(&s.errs, pick.Line, "", "", fmt.Sprintf("section 'main' has type %q; write config gogoc 'main'", pick.Type))
		return nil
	}
	if pick != nil && pick.Name != "main" {
		// libuci's generated name of an unnamed section is never "main",
		// but be sure the section really is called main.
		pick = nil
	}
	for _, sec := range f.Sections {
		if sec.Type != "gogoc" || sec == pick {
			continue
		}
		if pick == nil {
			what := fmt.Sprintf("a config gogoc section named %q", sec.Name)
			if sec.Name == "" {
				what = "an unnamed config gogoc section"
			}
			s.add(&s.errs, sec.Line, "", "", "no config gogoc 'main' section: "+what+
				" is not read by OpenWrt's scripts or LuCI, which use gogoc.main; name it 'main' (config gogoc 'main')")
			return nil
		}
		name := "an unnamed config gogoc section"
		if sec.Name != "" {
			name = fmt.Sprintf("config gogoc section %q", sec.Name)
		}
		s.add(&s.warnings, sec.Line, "", "", name+" ignored: only config gogoc 'main' is read")
	}
	if pick == nil {
		s.add(&s.errs, 0, "", "", "no config gogoc 'main' section")
	}
	return pick
}

// build applies the settings to the defaults and runs the checks that
// involve several keys.
func (s *source) build() *Config {
	c := Defaults(s.format)
	for i := range keys {
		k := &keys[i]
		st := s.set[k.name]
		if st == nil {
			continue
		}
		for _, v := range st.values {
			items := []string{v.text}
			if k.whole != nil && v.text != "" {
				if err := k.whole(v.text); err != nil {
					s.bad[k.name] = true
					s.add(&s.errs, v.line, st.stmt, k.name, err.Error())
					continue
				}
			}
			if k.list {
				items = strings.FieldsFunc(v.text, func(r rune) bool { return strings.ContainsRune(k.seps, r) })
			}
			for _, item := range items {
				if item == "" {
					continue // empty means default
				}
				if err := k.set(&c, item); err != nil {
					msg := err.Error()
					if s.format == FormatLegacy && strings.Contains(v.text, "#") {
						msg += " (gogoc.conf has no inline comments)"
					}
					s.bad[k.name] = true
					s.add(&s.errs, v.line, st.stmt, k.name, msg)
				}
			}
		}
	}
	crossCheck(&c, s)
	return &c
}

func (s *source) isSet(key string) bool   { return s.set[key] != nil }
func (s *source) refused(key string) bool { return s.bad[key] }

// report files a problem with key at the line that explains it: the key's
// own line, else the line of the key that makes it a problem (by), else
// the section.
func (s *source) report(key, by, msg string) {
	line, stmt := s.anchor, s.stmt
	if st := s.set[key]; st != nil {
		line, stmt = st.line, st.stmt
	} else if st := s.set[by]; st != nil {
		line = st.line
	}
	s.add(&s.errs, line, stmt, key, msg)
}

// tidy removes any password text from the messages and sorts them by line.
func (s *source) tidy(list Issues) Issues {
	if len(list) == 0 {
		return nil
	}
	for _, i := range list {
		for _, pw := range s.secrets {
			// Messages never quote passwd itself; this catches the
			// password turning up elsewhere (as the userid, say). Shorter
			// ones would garble ordinary words.
			if secret.Maskable(pw) {
				i.Msg = strings.ReplaceAll(i.Msg, pw, "********")
				i.Key = strings.ReplaceAll(i.Key, pw, "********")
			}
		}
	}
	// By line, equal lines in report order. Sorting indices reuses the
	// []int sort the binary has anyway (sort.SliceStable links reflection).
	order := make([]int, len(list))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		if list[i].Line != list[j].Line {
			return list[i].Line - list[j].Line
		}
		return i - j
	})
	sorted := make(Issues, len(list))
	for k, i := range order {
		sorted[k] = list[i]
	}
	return sorted
}
