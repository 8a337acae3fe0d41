package uci

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// dump renders a File one element per line with its line number, so that a
// table can state the expected structure compactly.
func dump(f *File) string {
	var b strings.Builder
	if f.Package != "" {
		fmt.Fprintf(&b, "package %s\n", f.Package)
	}
	for _, s := range f.Sections {
		fmt.Fprintf(&b, "%d config %s %q\n", s.Line, s.Type, s.Name)
		for _, o := range s.Options {
			kw := "option"
			if o.List {
				kw = "list"
			}
			for i, v := range o.Values {
				fmt.Fprintf(&b, "%d   %s %s %q\n", o.Lines[i], kw, o.Name, v)
			}
		}
	}
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // dump of the result
		errs string // expected error text, "" for none
	}{
		{"empty file", "", "", ""},
		{"blank lines and comments", "\n# a comment\n   # indented comment\n\t\n", "", ""},
		{
			"named section",
			"config gogoc 'main'\n\toption server 'broker.example.net'\n",
			"1 config gogoc \"main\"\n2   option server \"broker.example.net\"\n", "",
		},
		{
			"anonymous section",
			"config gogoc\n\toption enabled 1\n",
			"1 config gogoc \"\"\n2   option enabled \"1\"\n", "",
		},
		{
			"empty section name is anonymous",
			"config gogoc ''\n",
			"1 config gogoc \"\"\n", "",
		},
		{
			"bare words",
			"config gogoc main\noption server broker.example.net:3653\n",
			"1 config gogoc \"main\"\n2   option server \"broker.example.net:3653\"\n", "",
		},
		{
			"double quotes keep spaces",
			"config a\noption x \"two words\"\n",
			"1 config a \"\"\n2   option x \"two words\"\n", "",
		},
		{
			"single quotes keep spaces",
			"config a\noption x 'two  words'\n",
			"1 config a \"\"\n2   option x \"two  words\"\n", "",
		},
		{
			"single quotes are literal",
			`config a` + "\n" + `option x 'a\b"c\'` + "\n",
			"1 config a \"\"\n2   option x \"a\\\\b\\\"c\\\\\"\n", "",
		},
		{
			"double quote escapes take the next byte",
			`config a` + "\n" + `option x "a\"b\\c\n'd"` + "\n",
			"1 config a \"\"\n2   option x \"a\\\"b\\\\cn'd\"\n", "",
		},
		{
			"bare escapes",
			`config a` + "\n" + `option x a\ b\#c\;d\'e` + "\n",
			"1 config a \"\"\n2   option x \"a b#c;d'e\"\n", "",
		},
		{
			"adjacent pieces join",
			`config a` + "\n" + `option x 'ab'"cd"ef` + "\n",
			"1 config a \"\"\n2   option x \"abcdef\"\n", "",
		},
		{
			"apostrophe written the libuci way",
			`config a` + "\n" + `option passwd 'it'\''s'` + "\n",
			"1 config a \"\"\n2   option passwd \"it's\"\n", "",
		},
		{
			"empty value leaves the option unset",
			"config a\noption x ''\noption y \"\"\n",
			"1 config a \"\"\n", "",
		},
		{
			// uci_parse_option calls uci_set with a pointer that
			// uci_fill_ptr filled in, never looked up: an empty value
			// returns before uci_delete. `uci get` keeps the value.
			"empty value after a value does nothing (uci_set while parsing)",
			"config a\noption x 'one'\noption y 'keep'\noption x ''\noption x\noption x \"\"\n",
			"1 config a \"\"\n2   option x \"one\"\n3   option y \"keep\"\n", "",
		},
		{
			"empty option after a list does nothing",
			"config a\nlist d 'one'\noption d ''\n",
			"1 config a \"\"\n2   list d \"one\"\n", "",
		},
		{
			"option without value",
			"config a\noption x\n",
			"1 config a \"\"\n", "",
		},
		{
			"list",
			"config a\nlist dns 'ns1'\nlist dns ns2\n",
			"1 config a \"\"\n2   list dns \"ns1\"\n3   list dns \"ns2\"\n", "",
		},
		{
			"list keeps an empty item",
			"config a\nlist dns ''\nlist dns 'x'\n",
			"1 config a \"\"\n2   list dns \"\"\n3   list dns \"x\"\n", "",
		},
		{
			// uci_add_list allocates the list after the old option
			// and frees the option: the list takes its place.
			"option then list makes a list in the option's place (uci_add_list)",
			"config a\noption dns 'one'\noption z 'z'\nlist dns 'two'\n",
			"1 config a \"\"\n2   list dns \"one\"\n4   list dns \"two\"\n3   option z \"z\"\n", "",
		},
		{
			"option after list replaces it in its place (uci_set)",
			"config a\nlist dns 'one'\nlist dns 'two'\noption z z\noption dns 'three'\n",
			"1 config a \"\"\n5   option dns \"three\"\n4   option z \"z\"\n", "",
		},
		{
			// uci_set allocates the new option right after the old one
			// (or copies a value of the same length over it).
			"a new value keeps the option's place (uci_set)",
			"config a\noption x '1'\noption y '2'\noption x '3'\noption w '4'\noption w '44'\n",
			"1 config a \"\"\n4   option x \"3\"\n3   option y \"2\"\n6   option w \"44\"\n", "",
		},
		{
			"option, list, option keeps the first place",
			"config a\noption x 1\nlist x 2\noption y 3\noption x 4\n",
			"1 config a \"\"\n5   option x \"4\"\n4   option y \"3\"\n", "",
		},
		{
			"the same value keeps place and line",
			"config a\noption x '1'\noption y '2'\noption x '1'\n",
			"1 config a \"\"\n2   option x \"1\"\n3   option y \"2\"\n", "",
		},
		{
			"single quotes span lines",
			"config a\noption text 'line 1\nline 2'\noption after 'x'\n",
			"1 config a \"\"\n2   option text \"line 1\\nline 2\"\n4   option after \"x\"\n", "",
		},
		{
			"double quotes span lines, backslash-newline joins",
			"config a\noption text \"one \\\ntwo\nthree\"\noption after x\n",
			"1 config a \"\"\n2   option text \"one two\\nthree\"\n5   option after \"x\"\n", "",
		},
		{
			"bare word continued on the next line",
			"config a\noption x ab\\\ncd\noption y z\n",
			"1 config a \"\"\n2   option x \"abcd\"\n4   option y \"z\"\n", "",
		},
		{
			"continuation with CRLF",
			"config a\r\noption x ab\\\r\ncd\r\n",
			"1 config a \"\"\n2   option x \"abcd\"\n", "",
		},
		{
			"libuci's import test",
			"package 'import'\n\nconfig 'type' 'section'\n\toption 'opt' 'val'\n\tlist 'list_opt' 'val0'\n\tlist 'list_opt' 'val1'\n" +
				"\toption mul_line_opt_sq \\''line 1\nline 2 \\\nline 3'\\'\n" +
				"\toption mul_line_opt_dq \"\\\"Hello, \\\nWorld.\\'\n\"\n",
			"package import\n3 config type \"section\"\n4   option opt \"val\"\n5   list list_opt \"val0\"\n6   list list_opt \"val1\"\n" +
				"7   option mul_line_opt_sq \"'line 1\\nline 2 \\\\\\nline 3'\"\n" +
				"10   option mul_line_opt_dq \"\\\"Hello, World.'\\n\"\n", "",
		},
		{
			"semicolons separate statements",
			"config a 'b'; option x 'y' ; option z w\n",
			"1 config a \"b\"\n1   option x \"y\"\n1   option z \"w\"\n", "",
		},
		{
			// parse_str ends a bare word by writing NUL where it
			// stopped: on the ';', which libuci then never sees, and
			// the rest of the line with it.
			"bare word directly before a semicolon hides the rest of the line (parse_str)",
			"config a b;option c d;option e f\n",
			"1 config a \"b\"\n",
			"test:1: config: libuci ignores the rest of the line after a ';' that directly follows an unquoted word; put a space before the ';' or start a new line",
		},
		{
			"a value directly before a semicolon",
			"config a\noption c d;option e f\n",
			"1 config a \"\"\n2   option c \"d\"\n",
			"test:2: option c: libuci ignores the rest of the line after a ';' that directly follows an unquoted word; put a space before the ';' or start a new line",
		},
		{
			"an option name directly before a semicolon",
			"config a\noption x;option y z\n",
			"1 config a \"\"\n",
			"test:2: option: libuci ignores the rest of the line after a ';' that directly follows an unquoted word; put a space before the ';' or start a new line",
		},
		{
			"nothing but blanks and a comment after such a semicolon",
			"config a;;\noption x y; # c\noption z w;\noption n;\n",
			"1 config a \"\"\n2   option x \"y\"\n3   option z \"w\"\n", "",
		},
		{
			// An escape or a quote moves the decoded word behind the
			// input, so the NUL misses the ';', which then separates.
			"an escaped or quoted word before a semicolon",
			"config a\noption x y\\z;option c d\noption e 'f';option g h\n",
			"1 config a \"\"\n2   option x \"yz\"\n2   option c \"d\"\n3   option e \"f\"\n3   option g \"h\"\n", "",
		},
		{
			// next_arg takes a ';' where an argument starts as an empty
			// argument; assert_eol then reads the next statement's
			// keyword as one argument too many.
			"a semicolon where the section name would be (next_arg, assert_eol)",
			"config a ; option x y\n",
			"",
			"test:1: config: too many arguments: libuci reads that ';' as an empty argument, not as the end of the statement (start a new line instead)",
		},
		{
			"a semicolon where the value would be",
			"config a\noption x ; option y z\n",
			"1 config a \"\"\n",
			"test:2: option x: too many arguments: libuci reads that ';' as an empty argument, not as the end of the statement (start a new line instead)",
		},
		{
			"two semicolons: an empty name, then the end of the statement",
			"config a ; ; option x y\n",
			"1 config a \"\"\n1   option x \"y\"\n", "",
		},
		{
			// After assert_eol took the ';', strtok(" \t") finds the
			// line end and uci_parse_line calls it an invalid command.
			"a semicolon after a quoted value at the end of the line",
			"config a\noption x 'y';\noption z 'w'; \noption v 'u';# c\n",
			"1 config a \"\"\n2   option x \"y\"\n3   option z \"w\"\n4   option v \"u\"\n",
			"test:2: ';' with no statement after it on the line (libuci takes the line end for a command; remove the ';')\n" +
				"test:3: ';' with no statement after it on the line (libuci takes the line end for a command; remove the ';')",
		},
		{
			"a line starting with a semicolon",
			"config a\n;option x y\n",
			"1 config a \"\"\n",
			"test:2: a statement cannot start with ';'",
		},
		{
			// strtok(" \t") cuts the keyword: other white space is part
			// of it.
			"a keyword ends only at a space or a tab (uci_parse_line)",
			"config\ta\n\toption\tx\ty\nconfig\vb\nconfig\rc\nconfig#d\n",
			"1 config a \"\"\n2   option x \"y\"\n",
			"test:3: \"config\" must be followed by a space or a tab\n" +
				"test:4: \"config\" must be followed by a space or a tab\n" +
				"test:5: unknown command (a statement starts with config, option, list or package)",
		},
		{
			// parse_backslash pulls in the next line and parse_str
			// goes on only if it does not start with white space.
			"a continued word stops at the next line's indentation",
			"config a\noption x ab\\\n  cd\noption y z\n",
			"1 config a \"\"\n4   option y \"z\"\n",
			"test:3: option x: too many arguments (quote a value that contains spaces)",
		},
		{
			"a backslash before a CR that does not end the line",
			"config a\noption x a\\\rb\n",
			"1 config a \"\"\n2   option x \"a\\rb\"\n", "",
		},
		{
			"CR alone does not end a line",
			"config a\roption x y\r",
			"",
			"test:1: config: too many arguments (quote a value that contains spaces)",
		},
		{
			// uci_fixup_section names an anonymous section cfg, the
			// section count and a hash of its type; uci_parse_config
			// looks a name up among those too.
			"libuci's generated name reopens an anonymous section (uci_fixup_section)",
			"config a\noption x 1\nconfig b 'n'\nconfig a\nconfig a 'cfg03b606'\noption y 2\nconfig a 'cfg01b606'\noption z 3\n",
			"1 config a \"\"\n2   option x \"1\"\n8   option z \"3\"\n3 config b \"n\"\n4 config a \"\"\n6   option y \"2\"\n", "",
		},
		{
			"a named section reopened: values replaced in place",
			"config a 'm'\noption x 1\nconfig b\noption y 2\nconfig a 'm'\noption z 3\noption x 4\n",
			"1 config a \"m\"\n7   option x \"4\"\n6   option z \"3\"\n3 config b \"\"\n4   option y \"2\"\n", "",
		},
		{
			"package directly before a semicolon",
			"package foo;config a\n",
			"package foo\n",
			"test:1: package: libuci ignores the rest of the line after a ';' that directly follows an unquoted word; put a space before the ';' or start a new line",
		},
		{
			"trailing and doubled semicolons",
			"config a;;\noption x y;\n",
			"1 config a \"\"\n2   option x \"y\"\n", "",
		},
		{
			"comment after a statement",
			"config a 'b' # the section\noption x 'y' # the option\n",
			"1 config a \"b\"\n2   option x \"y\"\n", "",
		},
		{
			"hash inside a bare word starts a comment",
			"config a\noption x ab#cd ef\n",
			"1 config a \"\"\n2   option x \"ab\"\n", "",
		},
		{
			"hash right after a quote starts a comment",
			"config a\noption x 'ab'#cd\n",
			"1 config a \"\"\n2   option x \"ab\"\n", "",
		},
		{
			"hash and semicolon inside quotes are text",
			"config a\noption x 'a#b;c'\noption y \"d#e;f\"\n",
			"1 config a \"\"\n2   option x \"a#b;c\"\n3   option y \"d#e;f\"\n", "",
		},
		{
			"short keywords",
			"c gogoc main\no server s\nl dns d\n",
			"1 config gogoc \"main\"\n2   option server \"s\"\n3   list dns \"d\"\n", "",
		},
		{
			"package statement",
			"package gogoc-test\nconfig a\n",
			"package gogoc-test\n2 config a \"\"\n", "",
		},
		{
			"CRLF line ends",
			"config gogoc 'main'\r\n\toption server 'b'\r\n\toption enabled 1\r\n",
			"1 config gogoc \"main\"\n2   option server \"b\"\n3   option enabled \"1\"\n", "",
		},
		{
			"spaces and tabs around words",
			"  \tconfig\t gogoc \t'main'  \n\t\t  option   x\t\t'y'   \n",
			"1 config gogoc \"main\"\n2   option x \"y\"\n", "",
		},
		{
			"a named section opened twice is one section",
			"config a 'm'\noption x 1\nconfig b\noption y 2\nconfig a 'm'\noption z 3\n",
			"1 config a \"m\"\n2   option x \"1\"\n6   option z \"3\"\n3 config b \"\"\n4   option y \"2\"\n", "",
		},
		{
			"anonymous sections are separate",
			"config a\noption x 1\nconfig a\noption x 2\n",
			"1 config a \"\"\n2   option x \"1\"\n3 config a \"\"\n4   option x \"2\"\n", "",
		},
		{
			"no newline at end of file",
			"config a\noption x 'y'",
			"1 config a \"\"\n2   option x \"y\"\n", "",
		},
		{
			"type may hold punctuation",
			"config 'my.type-1'\n",
			"1 config my.type-1 \"\"\n", "",
		},
		{
			"UTF-8 and '=' in values",
			"config a\noption x 'ключ=значение'\n",
			"1 config a \"\"\n2   option x \"ключ=значение\"\n", "",
		},
		{
			"backslash ending the file is dropped",
			"config a\noption x ab\\",
			"1 config a \"\"\n2   option x \"ab\"\n", "",
		},

		// Errors: every one names the file and line, never a value.
		{
			"mistyped keyword",
			"config a\noptoin x y\noption z w\n",
			"1 config a \"\"\n3   option z \"w\"\n",
			`test:2: unknown command "optoin" (a statement starts with config, option, list or package)`,
		},
		{
			"a stray word is not echoed",
			"config a\nHunter2Secret\n",
			"1 config a \"\"\n",
			"test:2: unknown command (a statement starts with config, option, list or package)",
		},
		{
			"option before any section",
			"option x y\nconfig a\n",
			"2 config a \"\"\n",
			"test:1: option x: comes before the first config section",
		},
		{
			"unterminated single quote names its statement's line",
			"config a\noption passwd 'secret\noption y z\n",
			"1 config a \"\"\n",
			"test:2: option passwd: unterminated ' quote",
		},
		{
			"a stray quote blames the statement it starts in",
			"config a\noption passwd 'it's'\noption x 'y'\noption z 'w'\n",
			"1 config a \"\"\n",
			"test:2: option passwd: unterminated ' quote",
		},
		{
			"unterminated double quote",
			"config a\noption x 'ok'\noption text \"abc\n\n",
			"1 config a \"\"\n2   option x \"ok\"\n",
			`test:3: option text: unterminated " quote`,
		},
		{
			"backslash ending a double-quoted value",
			"config a\noption x \"ab\\",
			"1 config a \"\"\n",
			`test:2: option x: unterminated " quote`,
		},
		{
			"unquoted value with a space",
			"config a\noption passwd my secret\noption y z\n",
			"1 config a \"\"\n3   option y \"z\"\n",
			"test:2: option passwd: too many arguments (quote a value that contains spaces)",
		},
		{
			"extra word spanning lines is read past",
			"config a\noption x y 'extra\nconfig b'\noption z w\n",
			"1 config a \"\"\n4   option z \"w\"\n",
			"test:2: option x: too many arguments (quote a value that contains spaces)",
		},
		{
			"invalid option name",
			"config a\noption my-opt x\n",
			"1 config a \"\"\n",
			"test:2: option: invalid name (allowed: A-Z a-z 0-9 _)",
		},
		{
			"invalid list name",
			"config a\nlist 'a b' x\n",
			"1 config a \"\"\n",
			"test:2: list: invalid name (allowed: A-Z a-z 0-9 _)",
		},
		{
			"missing option name",
			"config a\noption\n",
			"1 config a \"\"\n",
			"test:2: option: missing name",
		},
		{
			"keyword at the end of the file",
			"config a\nlist",
			"1 config a \"\"\n",
			"test:2: list: missing name",
		},
		{
			"invalid section name",
			"config gogoc 'my-main'\noption x y\n",
			"",
			"test:1: config: invalid section name (allowed: A-Z a-z 0-9 _)",
		},
		{
			"missing section type",
			"config\n",
			"",
			"test:1: config: missing section type",
		},
		{
			"section type with a space",
			"config 'a b'\n",
			"",
			"test:1: config: invalid section type (printable characters, no spaces)",
		},
		{
			"section reopened with another type",
			"config a 'm'\nconfig b 'm'\noption x y\n",
			"1 config a \"m\"\n",
			`test:2: config: section "m" was opened with type "a" on line 1`,
		},
		{
			"invalid package name",
			"package 'a.b'\n",
			"",
			"test:1: package: invalid package name (allowed: A-Z a-z 0-9 _ -)",
		},
		{
			"every error is reported",
			"config a\noption x 'ok'\noption bad-name 1\noption y 'two words' here\noptoin z\noption last 'v'\n",
			"1 config a \"\"\n2   option x \"ok\"\n6   option last \"v\"\n",
			"test:3: option: invalid name (allowed: A-Z a-z 0-9 _)\n" +
				"test:4: option y: too many arguments (quote a value that contains spaces)\n" +
				`test:5: unknown command "optoin" (a statement starts with config, option, list or package)`,
		},
		{
			"NUL byte",
			"config a\noption x 'a\x00b'\n",
			"",
			"test:2: NUL byte in file",
		},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("test", []byte(tt.in))
			if got := dump(f); got != tt.want {
				t.Errorf("structure:\n%s\nwant:\n%s", got, tt.want)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
				var list ErrorList
				if !errors.As(err, &list) {
					t.Errorf("error is %T, want ErrorList", err)
				}
			}
			if gotErr != tt.errs {
				t.Errorf("errors:\n%s\nwant:\n%s", gotErr, tt.errs)
			}
		})
	}
}

func TestParseNeverEchoesValues(t *testing.T) {
	const pw = "Zq9-SeCrEt-pw"
	inputs := []string{
		"config a\noption passwd '" + pw + "\n",
		"config a\noption passwd \"" + pw + "\n",
		"config a\noption passwd " + pw + " extra\n",
		"config a\n" + pw + "\n",
		"option passwd " + pw + "\n",
		"config a\noption pass-wd '" + pw + "'\n",
	}
	for _, in := range inputs {
		_, err := Parse("f", []byte(in))
		if err == nil {
			t.Fatalf("%q: no error", in)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error leaks the value: %v", err)
		}
	}
}

func TestErrorsCarryPosition(t *testing.T) {
	_, err := Parse("/etc/config/gogoc", []byte("config gogoc 'main'\n\toption passwd 'x\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	if e.File != "/etc/config/gogoc" || e.Line != 2 || e.Stmt != "option" || e.Name != "passwd" {
		t.Errorf("got %+v", *e)
	}
}

func TestTooManyErrors(t *testing.T) {
	_, err := Parse("f", []byte(strings.Repeat("bogus\n", 100)))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatal(err)
	}
	if len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "too many errors") {
		t.Errorf("got %d errors, last %v", len(list), list[len(list)-1])
	}
}

func TestSectionLookup(t *testing.T) {
	f, err := Parse("t", []byte(`
config gogoc
	option n 0
config other 'x'
config gogoc 'main'
	option n 1
config gogoc
	option n 2
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want string // value of option n, "-" for no section, "none" for no option
	}{
		{"main", "1"},
		{"x", "none"},
		{"nosuch", "-"},
		{"@gogoc[0]", "0"},
		{"@gogoc[1]", "1"}, // named sections count too, as in libuci
		{"@gogoc[2]", "2"},
		{"@gogoc[3]", "-"},
		{"@gogoc[-1]", "2"},
		{"@gogoc[-3]", "0"},
		{"@gogoc[-4]", "-"},
		{"@other[0]", "none"},
		{"@[1]", "none"},
		{"@[2]", "1"},
		{"@gogoc", "-"},
		{"@gogoc[x]", "-"},
		// uci_fixup_section's names: cfg, the section's number, the
		// hash of "gogoc" (checked against the real uci show -X).
		{"cfg017ef4", "0"},
		{"cfg047ef4", "2"},
		{"cfg027ef4", "-"},
		{"cfg037ef4", "-"},
		{"@gogoc[0]x", "-"},
		{"@go goc[0]", "-"},
		{"", "-"},
	}
	for i, want := range []string{"cfg017ef4", "x", "main", "cfg047ef4"} {
		if got := f.ID(i); got != want {
			t.Errorf("ID(%d) = %s, want %s", i, got, want)
		}
	}
	for _, tt := range tests {
		s := f.Section(tt.ref)
		got := "-"
		if s != nil {
			got = "none"
			if o := s.Option("n"); o != nil {
				got = o.Value()
			}
		}
		if got != tt.want {
			t.Errorf("Section(%q): got %s, want %s", tt.ref, got, tt.want)
		}
	}
}

func TestBuilders(t *testing.T) {
	var f File
	s := f.AddSection("gogoc", "main")
	s.Set("a", "1")
	s.Set("b", "2")
	s.AddList("a", "3")
	s.Set("b", "")
	if again := f.AddSection("other", "main"); again != s || s.Type != "other" || len(f.Sections) != 1 {
		t.Errorf("AddSection with an existing name: %+v", f.Sections)
	}
	anon := f.AddSection("gogoc", "")
	anon.Set("x", "y")
	want := "0 config other \"main\"\n0   list a \"1\"\n0   list a \"3\"\n0 config gogoc \"\"\n0   option x \"y\"\n"
	if got := dump(&f); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(`
config gogoc 'main'
	option enabled '1'
	option server 'broker.example.net:3653'
	option auth_method 'digest-md5'
	option userid 'alice'
	option passwd 'it'\''s a secret'
	option host_type 'router'
	option prefixlen '56'
	option if_prefix 'br-lan'
	option tunnel_mode 'v6anyv4'
	list dns_servers_ra '2001:db8::53'
	list dns_servers_ra '2001:db8::54'
	option keepalive_interval '30'
`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("b", data); err != nil {
			b.Fatal(err)
		}
	}
}
