package pkgtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jsklein/gogoc/uci"
)

// The script tests put a link named "uci" to this test binary on PATH;
// TestMain then runs fakeUCI instead of the tests. It keeps the config
// files in $GOGOC_UCI_DIR and, like the real uci, stages changes (in
// .staged/) until `uci commit`, so a script that forgets to commit loses
// its edits here as it would on a router.
func runFakeUCI() int {
	dir := os.Getenv("GOGOC_UCI_DIR")
	if dir == "" {
		fmt.Fprintln(os.Stderr, "fake uci: GOGOC_UCI_DIR not set")
		return 2
	}
	err := fakeUCI(dir, os.Args[1:], os.Stdout)
	if err == nil {
		return 0
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintln(os.Stderr, "uci:", err)
	}
	return 1
}

var errQuiet = errors.New("entry not found")

func fakeUCI(dir string, args []string, stdout io.Writer) error {
	quiet := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-q" {
			quiet = true
		}
		args = args[1:]
	}
	notFound := func(what string) error {
		if quiet {
			return errQuiet
		}
		return fmt.Errorf("entry not found: %s", what)
	}
	if len(args) == 0 {
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	if cmd == "commit" {
		pkgs := args
		if len(pkgs) == 0 {
			m, _ := filepath.Glob(filepath.Join(dir, ".staged", "*"))
			for _, p := range m {
				pkgs = append(pkgs, filepath.Base(p))
			}
		}
		for _, p := range pkgs {
			staged := filepath.Join(dir, ".staged", p)
			if _, err := os.Stat(staged); err != nil {
				continue
			}
			if err := os.Rename(staged, filepath.Join(dir, p)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(args) != 1 {
		return fmt.Errorf("%s: want one argument", cmd)
	}
	ref, value, hasValue := strings.Cut(args[0], "=")
	parts := strings.SplitN(ref, ".", 3)
	pkg := parts[0]
	f, err := loadUCI(dir, pkg)
	if err != nil {
		return err
	}
	var sec *uci.Section
	if len(parts) > 1 {
		sec = f.Section(parts[1])
	}
	var opt *uci.Option
	if sec != nil && len(parts) > 2 {
		opt = sec.Option(parts[2])
	}
	switch cmd {
	case "show":
		// uci's cli (uci_show_section): the section as pkg.name=type with
		// anonymous sections as @type[index] (no -X), then its options,
		// values in single quotes.
		if sec == nil || len(parts) != 2 {
			return notFound(ref)
		}
		name := sec.Name
		if name == "" {
			i := 0
			for _, s := range f.Sections {
				if s == sec {
					break
				}
				if s.Type == sec.Type {
					i++
				}
			}
			name = fmt.Sprintf("@%s[%d]", sec.Type, i)
		}
		fmt.Fprintf(stdout, "%s.%s=%s\n", pkg, name, sec.Type)
		for _, o := range sec.Options {
			var q []string
			for _, v := range o.Values {
				q = append(q, "'"+strings.ReplaceAll(v, "'", `'\''`)+"'")
			}
			fmt.Fprintf(stdout, "%s.%s.%s=%s\n", pkg, name, o.Name, strings.Join(q, " "))
		}
		return nil
	case "get":
		switch {
		case sec == nil:
			return notFound(ref)
		case len(parts) == 2:
			fmt.Fprintln(stdout, sec.Type)
		case opt == nil:
			return notFound(ref)
		default:
			fmt.Fprintln(stdout, strings.Join(opt.Values, " "))
		}
		return nil
	case "set", "add_list", "del_list":
		if !hasValue || len(parts) != 3 {
			return fmt.Errorf("%s needs package.section.option=value", cmd)
		}
		if sec == nil {
			return notFound(ref)
		}
		switch cmd {
		case "set":
			if opt != nil {
				removeOption(sec, parts[2])
			}
			sec.Set(parts[2], value)
		case "add_list":
			sec.AddList(parts[2], value)
		case "del_list":
			if opt == nil {
				return nil
			}
			kept := opt.Values[:0]
			for _, v := range opt.Values {
				if v != value {
					kept = append(kept, v)
				}
			}
			opt.Values = kept
			if len(kept) == 0 {
				removeOption(sec, parts[2])
			}
		}
	case "delete":
		switch {
		case sec == nil:
			return notFound(ref)
		case len(parts) == 2:
			for i, s := range f.Sections {
				if s == sec {
					f.Sections = append(f.Sections[:i], f.Sections[i+1:]...)
					break
				}
			}
		case opt == nil:
			return notFound(ref)
		default:
			removeOption(sec, parts[2])
		}
	default:
		return fmt.Errorf("fake uci does not know %q", cmd)
	}
	var buf bytes.Buffer
	if err := uci.Write(&buf, f); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, ".staged"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".staged", pkg), buf.Bytes(), 0o644)
}

func removeOption(s *uci.Section, name string) {
	for i, o := range s.Options {
		if o.Name == name {
			s.Options = append(s.Options[:i], s.Options[i+1:]...)
			return
		}
	}
}

// loadUCI reads a package as uci sees it: the staged copy if there is one.
func loadUCI(dir, pkg string) (*uci.File, error) {
	data, err := os.ReadFile(filepath.Join(dir, ".staged", pkg))
	if errors.Is(err, os.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(dir, pkg))
	}
	if errors.Is(err, os.ErrNotExist) {
		return &uci.File{Package: pkg}, nil
	}
	if err != nil {
		return nil, err
	}
	return uci.Parse(pkg, data)
}
