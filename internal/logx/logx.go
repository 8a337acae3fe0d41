// Package logx is gogoc's logging: one Logger that writes each record
// to stdout, stderr, syslog and a size-rotated file, each destination with
// its own level 0..3 as the old client's log_* keys (spec §12.6): a message
// goes to every destination whose level is at least the message's (errors
// and warnings 1, information 2, debug 3; 0 turns a destination off).
// Registered secrets are replaced in every line before it is written, a
// last line of defence behind the rule that nothing logs them (secret.String
// prints a mask wherever it is formatted).
//
// The call style is log/slog's (msg, then key-value pairs) and the line
// spelling is slog's text handler's, but the package does not use log/slog:
// importing it links its handlers and, through them, encoding/json, about
// 0.45 MiB of a mips binary.
package logx

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jsklein/gogoc/internal/secret"
)

// Options choose the destinations. A level of 0 turns one off.
type Options struct {
	Stdout      io.Writer
	StdoutLevel int
	Stderr      io.Writer
	StderrLevel int

	SyslogLevel    int
	SyslogFacility string // USER (default) or LOCAL0..LOCAL7
	SyslogAddr     string // unixgram socket; default /dev/log
	Tag            string // default "gogoc"

	FileLevel     int
	FilePath      string
	Rotate        bool
	RotateSizeKiB int // default 32
	RotateDelete  bool
	RotateKeep    int // rotated files kept beside the log; default 3

	// Secrets are masked wherever they appear in a line, those at least
	// secret.MinMasked bytes long: a shorter one would garble every line.
	Secrets []string
	// Now stamps the lines; the syslog writer calls it from its own
	// goroutine too.
	Now func() time.Time
}

// Level orders messages; the values are log/slog's.
type Level int

// The levels gogoc logs at.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// Logger writes to the destinations of the New call it came from. A nil
// *Logger discards everything, so a component may be given none.
type Logger struct {
	core  *core
	attrs []byte // pre-formatted key=value pairs from With
}

// Writer returns a Logger that writes messages at level and above to w,
// for command-line tools and tests.
func Writer(w io.Writer, level Level) *Logger {
	c := &core{o: Options{Stderr: w, StderrLevel: required(level), Now: time.Now, Tag: "gogoc"}}
	c.min.Store(int32(c.lowestLevel()))
	return &Logger{core: c}
}

// Discard returns a Logger that writes nothing.
func Discard() *Logger { return nil }

// Close closes the file and the syslog socket; later lines go to stdout
// and stderr only.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	c := l.core
	c.mu.Lock()
	file, sl := c.file, c.syslog
	c.file, c.syslog = nil, nil
	c.min.Store(int32(c.lowestLevel()))
	c.mu.Unlock()
	var errs []error
	if file != nil {
		errs = append(errs, file.close())
	}
	if sl != nil {
		// Outside the lock: the syslog writer may be waiting for it.
		errs = append(errs, sl.close())
	}
	return errors.Join(errs...)
}

// Dropped counts lines a destination could not take (syslog not reading,
// disk full); logging never blocks or fails the daemon.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.core.dropped.Load()
}

// New opens the destinations. A file that cannot be opened is an error; a
// missing syslog socket is not (lines are dropped until it appears).
func New(o Options) (*Logger, error) {
	c := &core{}
	if err := c.configure(o, c.notify, &c.dropped); err != nil {
		return nil, err
	}
	return &Logger{core: c}, nil
}

// Reconfigure switches to new destinations and levels (SIGHUP), keeping
// the Logger and every logger derived from it. On error the old
// destinations stay.
func (l *Logger) Reconfigure(o Options) error {
	n := &core{}
	if err := n.configure(o, l.core.notify, &l.core.dropped); err != nil {
		return err
	}
	c := l.core
	c.mu.Lock()
	oldFile, oldSyslog := c.file, c.syslog
	c.o, c.secrets, c.file, c.syslog = n.o, n.secrets, n.file, n.syslog
	c.min.Store(n.min.Load())
	c.mu.Unlock()
	if oldFile != nil {
		_ = oldFile.close()
	}
	if oldSyslog != nil {
		_ = oldSyslog.close()
	}
	return nil
}

// configure opens what o asks for into c, which is not shared yet; the
// syslog writer reports its trouble to notify and counts the lines it drops
// in dropped.
func (c *core) configure(o Options, notify func(string), dropped *atomic.Uint64) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tag == "" {
		o.Tag = "gogoc"
	}
	c.o = o
	for _, s := range o.Secrets {
		if !secret.Maskable(s) {
			continue
		}
		c.secrets = append(c.secrets, s)
		// An attribute value with a quote, a backslash or a space is
		// quoted by the text handler: mask that spelling too.
		if q := strconv.Quote(s); q[1:len(q)-1] != s && secret.Maskable(q[1:len(q)-1]) {
			c.secrets = append(c.secrets, q[1:len(q)-1])
		}
	}
	var fac int
	if o.SyslogLevel > 0 {
		var err error
		if fac, err = facility(o.SyslogFacility); err != nil {
			return err
		}
	}
	if o.FileLevel > 0 && o.FilePath != "" {
		size := o.RotateSizeKiB
		if size <= 0 {
			size = 32
		}
		keep := o.RotateKeep
		if keep <= 0 {
			keep = 3
		}
		f, err := openRotating(o.FilePath, o.Rotate, int64(size)*1024, o.RotateDelete, keep, o.Now)
		if err != nil {
			return err
		}
		c.file = f
	}
	if o.SyslogLevel > 0 {
		// Last: nothing can fail after its goroutine starts.
		addr := o.SyslogAddr
		if addr == "" {
			addr = "/dev/log"
		}
		c.syslog = newSyslog(addr, fac, o.Tag, o.Now, notify, dropped)
	}
	c.min.Store(int32(c.lowestLevel()))
	return nil
}

// required is the destination level a record needs.
func required(l Level) int {
	switch {
	case l >= LevelWarn:
		return 1
	case l >= LevelInfo:
		return 2
	}
	return 3
}

// core is shared by a Logger and the Loggers derived from it. mu guards
// the options and the local destinations; syslog lines are only queued
// under it.
type core struct {
	o       Options
	mu      sync.Mutex
	secrets []string
	file    *rotating
	syslog  *syslogConn
	dropped atomic.Uint64 // lines a destination could not take
	min     atomic.Int32  // highest level any destination wants; read unlocked
}

func (c *core) lowestLevel() int {
	m := 0
	if c.o.Stdout != nil {
		m = max(m, c.o.StdoutLevel)
	}
	if c.o.Stderr != nil {
		m = max(m, c.o.StderrLevel)
	}
	if c.syslog != nil {
		m = max(m, c.o.SyslogLevel)
	}
	if c.file != nil {
		m = max(m, c.o.FileLevel)
	}
	return m
}

// Debug logs at LevelDebug; args are key-value pairs as with log/slog.
func (l *Logger) Debug(msg string, args ...any) {
	l.Log(context.Background(), LevelDebug, msg, args...)
}

// Info logs at LevelInfo.
func (l *Logger) Info(msg string, args ...any) { l.Log(context.Background(), LevelInfo, msg, args...) }

// Warn logs at LevelWarn.
func (l *Logger) Warn(msg string, args ...any) { l.Log(context.Background(), LevelWarn, msg, args...) }

// Error logs at LevelError.
func (l *Logger) Error(msg string, args ...any) {
	l.Log(context.Background(), LevelError, msg, args...)
}

// With returns a Logger that adds args to every line.
func (l *Logger) With(args ...any) *Logger {
	if l == nil {
		return nil
	}
	return &Logger{core: l.core, attrs: appendArgs(slices.Clip(l.attrs), args)}
}

// Log writes msg at level to every destination that wants it. The context
// is accepted for log/slog's call shape; nothing reads it.
func (l *Logger) Log(_ context.Context, level Level, msg string, args ...any) {
	need := required(level)
	if l == nil || need > int(l.core.min.Load()) {
		return
	}
	c := l.core
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	if b := appendArgs(slices.Clip(l.attrs), args); len(b) > 0 {
		msg += " " + string(b)
	}
	c.mu.Lock()
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, "********")
	}
	c.writeLocal(level, need, msg)
	var sl *syslogConn
	if c.syslog != nil && c.o.SyslogLevel >= need {
		sl = c.syslog
	}
	c.mu.Unlock()
	if sl != nil {
		sl.send(severity(level), msg)
	}
}

// writeLocal writes a line to stdout, stderr and the file; c.mu is held.
func (c *core) writeLocal(level Level, need int, msg string) {
	line := c.o.Now().Format("2006/01/02 15:04:05") + " " + string(letter(level)) + " " + c.o.Tag + ": " + msg + "\n"
	if c.o.Stdout != nil && c.o.StdoutLevel >= need {
		c.count(io.WriteString(c.o.Stdout, line))
	}
	if c.o.Stderr != nil && c.o.StderrLevel >= need {
		c.count(io.WriteString(c.o.Stderr, line))
	}
	if c.file != nil && c.o.FileLevel >= need {
		c.count(0, c.file.write(line))
	}
}

// notify tells the local destinations about trouble with syslog, as a
// warning.
func (c *core) notify(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocal(LevelWarn, required(LevelWarn), msg)
}

// appendArgs pairs args as log/slog does: a string key takes the next
// argument as its value; a key without a value, or a value without a
// string key, is written under !BADKEY.
func appendArgs(b []byte, args []any) []byte {
	for len(args) > 0 {
		key, ok := args[0].(string)
		switch {
		case !ok:
			b = appendAttr(b, "!BADKEY", args[0])
			args = args[1:]
		case len(args) == 1:
			b = appendAttr(b, "!BADKEY", key)
			args = nil
		default:
			b = appendAttr(b, key, args[1])
			args = args[2:]
		}
	}
	return b
}

// appendAttr appends " key=value" (no leading space on an empty b).
func appendAttr(b []byte, key string, v any) []byte {
	if len(b) > 0 {
		b = append(b, ' ')
	}
	b = appendText(b, key)
	b = append(b, '=')
	switch x := v.(type) {
	case string:
		return appendText(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint:
		return strconv.AppendUint(b, uint64(x), 10)
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, x)
	case time.Duration:
		return appendText(b, x.String())
	case time.Time:
		return appendText(b, x.Format("2006-01-02T15:04:05.000Z07:00"))
	case encoding.TextMarshaler:
		t, err := x.MarshalText()
		if err != nil {
			return appendText(b, "!ERROR:"+err.Error())
		}
		return appendText(b, string(t))
	case []byte:
		return strconv.AppendQuote(b, string(x))
	default:
		return appendText(b, fmt.Sprintf("%+v", x))
	}
}

func appendText(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '"' || r == '=' || r == utf8.RuneError || !strconv.IsPrint(r) {
			return true
		}
	}
	return false
}

func (c *core) count(_ int, err error) {
	if err != nil {
		c.dropped.Add(1)
	}
}

func letter(l Level) byte {
	switch {
	case l >= LevelError:
		return 'E'
	case l >= LevelWarn:
		return 'W'
	case l >= LevelInfo:
		return 'I'
	}
	return 'D'
}
