package logx

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// rotating is a log file that is moved aside (or emptied, with deleteOld)
// before a line would take it to limit bytes (spec §12.6).
type rotating struct {
	path      string
	f         *os.File
	size      int64
	rotate    bool
	limit     int64
	deleteOld bool
	now       func() time.Time
}

func openRotating(path string, rotate bool, limit int64, deleteOld bool, now func() time.Time) (*rotating, error) {
	r := &rotating{path: path, rotate: rotate, limit: limit, deleteOld: deleteOld, now: now}
	if err := r.open(os.O_APPEND); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotating) open(mode int) error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|mode, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// rotatedName is <name-before-last-dot>.YYYYMMDDhhmmss<.ext>, or
// <name>.YYYYMMDDhhmmss without a dot.
func rotatedName(path string, t time.Time) string {
	dir, base := filepath.Split(path)
	ts := t.Format("20060102150405")
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		return dir + base[:i] + "." + ts + base[i:]
	}
	return path + "." + ts
}

func (r *rotating) write(line string) error {
	if r.f == nil {
		if err := r.open(os.O_APPEND); err != nil {
			return err
		}
	}
	if r.rotate && r.size > 0 && r.size+int64(len(line)) >= r.limit {
		if err := r.f.Close(); err != nil {
			return err
		}
		r.f = nil
		if !r.deleteOld {
			if err := os.Rename(r.path, freeName(rotatedName(r.path, r.now()))); err != nil {
				return err
			}
		}
		if err := r.open(os.O_TRUNC); err != nil {
			return err
		}
	}
	n, err := r.f.WriteString(line)
	r.size += int64(n)
	return err
}

func (r *rotating) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// freeName adds -1, -2, … to name while a file of that name exists, so a
// second rotation within one second does not overwrite the first.
func freeName(name string) string {
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); os.IsNotExist(err) {
			return name
		}
		ext := filepath.Ext(name)
		base := strings.TrimSuffix(name, ext)
		if j := strings.LastIndexByte(base, '-'); j > 0 && i > 1 {
			base = base[:j]
		}
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
}
