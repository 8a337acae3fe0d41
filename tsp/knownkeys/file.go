package knownkeys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jsklein/gogoc/internal/atomicfile"
)

// ErrMalformedFile marks a known-keys file with a line this package cannot
// trust; the *LineError says which.
var ErrMalformedFile = errors.New("malformed known keys file")

// LineError is one bad line, reported as file:line like a compiler does.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap makes errors.Is(err, ErrMalformedFile) true.
func (e *LineError) Unwrap() error { return ErrMalformedFile }

// File is a parsed known server keys file (spec §3.6). Each line is
//
//	<host> SP ssh-dss SP <base64 of Key.Blob> LF
//
// <host> is the broker string exactly as configured (it may carry :port or
// brackets). The file is kept line by line as read, so writing it back
// gives the same bytes; blank lines, '#' comments, other key types and
// trailing fields survive untouched, though only ssh-dss entries are used.
type File struct {
	name    string
	lines   []line
	noFinal bool // the last line had no LF
}

type line struct {
	raw  string // without the LF
	host string // "" for lines that are not ssh-dss entries
	key  Key
}

// Parse reads data, naming it name in errors. Every malformed line is
// reported, not only the first, so one edit can fix them all.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name}
	if len(data) == 0 {
		return f, nil
	}
	f.noFinal = data[len(data)-1] != '\n'
	text := strings.TrimSuffix(string(data), "\n")
	var errs []error
	for i, raw := range strings.Split(text, "\n") {
		l, err := parseLine(raw)
		if err != nil {
			errs = append(errs, &LineError{File: name, Line: i + 1, Msg: err.Error()})
			continue
		}
		f.lines = append(f.lines, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func parseLine(raw string) (line, error) {
	l := line{raw: raw}
	fields := strings.Fields(raw)
	if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
		return l, nil
	}
	if strings.ContainsAny(strings.TrimSuffix(raw, "\r"), "\r\x00") {
		return l, errors.New("control character inside the line")
	}
	if len(fields) < 3 {
		return l, fmt.Errorf("want <host> %s <base64 key>, got %d field(s)", KeyType, len(fields))
	}
	if fields[1] != KeyType {
		return l, nil // another key type: not ours to judge
	}
	blob, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil {
		return l, fmt.Errorf("key for %s is not base64: %v", fields[0], err)
	}
	if l.key, err = ParseBlob(blob); err != nil {
		return l, fmt.Errorf("key for %s: %v", fields[0], err)
	}
	l.host = fields[0]
	return l, nil
}

// Load reads the file at path. A missing file is an empty one: nothing is
// known yet.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{name: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known keys: %w", err)
	}
	return Parse(path, data)
}

// Bytes renders the file: the lines as read, then any added ones.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for i, l := range f.lines {
		b.WriteString(l.raw)
		if i < len(f.lines)-1 || !f.noFinal {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Lookup returns the key of host's last ssh-dss line (the old client lets
// the last one decide) and its line number; found is false when none.
func (f *File) Lookup(host string) (k Key, lineNo int, found bool) {
	for i, l := range f.lines {
		if l.host != "" && l.host == host {
			k, lineNo, found = l.key, i+1, true
		}
	}
	return k, lineNo, found
}

// Entry renders the line Add appends for host and k, without the LF.
func Entry(host string, k Key) string {
	return host + " " + KeyType + " " + base64.StdEncoding.EncodeToString(k.Blob())
}

// Add appends an entry for host. A host that could not be read back as
// the first field of a line is refused.
func (f *File) Add(host string, k Key) error {
	if host == "" || strings.ContainsAny(host, " \t\r\n\x00") || strings.HasPrefix(host, "#") {
		return fmt.Errorf("known keys: host %q cannot be stored: empty, '#' first, or contains blanks or control characters", host)
	}
	f.noFinal = false // the previous last line now ends in LF
	f.lines = append(f.lines, line{raw: Entry(host, k), host: host, key: k})
	return nil
}

// Save writes the file to its path atomically and durably (atomicfile):
// a crash leaves either the old or the new contents, and a symlink at the
// path is replaced, not followed. A missing directory is created.
func (f *File) Save() error {
	if err := atomicfile.Write(f.name, f.Bytes(), 0o644); err != nil {
		return fmt.Errorf("known keys: %w", err)
	}
	return nil
}

// Name is the path the file was read from and is saved to.
func (f *File) Name() string { return f.name }
