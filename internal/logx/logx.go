// Package logx is gogoc's logging: one slog.Logger that writes each record
// to stdout, stderr, syslog and a size-rotated file, each destination with
// its own level 0..3 as the old client's log_* keys (spec §12.6): a message
// goes to every destination whose level is at least the message's (errors
// and warnings 1, information 2, debug 3; 0 turns a destination off).
// Registered secrets are replaced in every line before it is written, a
// last line of defence behind the rule that nothing logs them.
package logx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
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

	// Secrets are masked wherever they appear in a line.
	Secrets []string
	Now     func() time.Time
}

// Logger is a slog.Logger with destinations that need closing.
type Logger struct {
	*slog.Logger
	core *core
}

// Close closes the file and the syslog socket.
func (l *Logger) Close() error {
	l.core.mu.Lock()
	defer l.core.mu.Unlock()
	var errs []error
	if l.core.file != nil {
		errs = append(errs, l.core.file.close())
	}
	if l.core.syslog != nil {
		errs = append(errs, l.core.syslog.close())
	}
	return errors.Join(errs...)
}

// Dropped counts lines a destination could not take (syslog down, disk
// full); logging never blocks or fails the daemon.
func (l *Logger) Dropped() uint64 {
	l.core.mu.Lock()
	defer l.core.mu.Unlock()
	return l.core.dropped
}

// New opens the destinations. A file that cannot be opened is an error; a
// missing syslog socket is not (lines are dropped until it appears).
func New(o Options) (*Logger, error) {
	c := &core{}
	if err := c.configure(o); err != nil {
		return nil, err
	}
	h := &handler{core: c}
	h.inner = slog.NewTextHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropBuiltins})
	return &Logger{Logger: slog.New(h), core: c}, nil
}

// Reconfigure switches to new destinations and levels (SIGHUP), keeping
// the Logger and every logger derived from it. On error the old
// destinations stay.
func (l *Logger) Reconfigure(o Options) error {
	n := &core{}
	if err := n.configure(o); err != nil {
		return err
	}
	c := l.core
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file != nil {
		_ = c.file.close()
	}
	if c.syslog != nil {
		_ = c.syslog.close()
	}
	c.o, c.secrets, c.file, c.syslog, c.min = n.o, n.secrets, n.file, n.syslog, n.min
	return nil
}

// configure opens what o asks for into c, which is not shared yet.
func (c *core) configure(o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tag == "" {
		o.Tag = "gogoc"
	}
	c.o = o
	for _, s := range o.Secrets {
		if s == "" {
			continue
		}
		c.secrets = append(c.secrets, s)
		// An attribute value with a quote, a backslash or a space is
		// quoted by the text handler: mask that spelling too.
		if q := strconv.Quote(s); q[1:len(q)-1] != s {
			c.secrets = append(c.secrets, q[1:len(q)-1])
		}
	}
	if o.SyslogLevel > 0 {
		fac, err := facility(o.SyslogFacility)
		if err != nil {
			return err
		}
		addr := o.SyslogAddr
		if addr == "" {
			addr = "/dev/log"
		}
		c.syslog = &syslogConn{addr: addr, facility: fac, tag: o.Tag, now: o.Now}
	}
	if o.FileLevel > 0 && o.FilePath != "" {
		size := o.RotateSizeKiB
		if size <= 0 {
			size = 32
		}
		f, err := openRotating(o.FilePath, o.Rotate, int64(size)*1024, o.RotateDelete, o.Now)
		if err != nil {
			return err
		}
		c.file = f
	}
	c.min = c.lowestLevel()
	return nil
}

// required is the destination level a record needs.
func required(l slog.Level) int {
	switch {
	case l >= slog.LevelWarn:
		return 1
	case l >= slog.LevelInfo:
		return 2
	}
	return 3
}

// core is shared by a handler and the handlers derived from it.
type core struct {
	o       Options
	mu      sync.Mutex
	buf     bytes.Buffer // the attribute formatter's output, under mu
	secrets []string
	file    *rotating
	syslog  *syslogConn
	dropped uint64
	min     int // highest level any destination wants
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

type handler struct {
	core  *core
	inner slog.Handler // formats the attributes only
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	h.core.mu.Lock()
	defer h.core.mu.Unlock()
	return required(l) <= h.core.min
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{core: h.core, inner: h.inner.WithAttrs(as)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{core: h.core, inner: h.inner.WithGroup(name)}
}

func dropBuiltins(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	c := h.core
	need := required(r.Level)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	attrs := slog.NewRecord(time.Time{}, r.Level, "", 0)
	r.Attrs(func(a slog.Attr) bool { attrs.AddAttrs(a); return true })
	if err := h.inner.Handle(ctx, attrs); err != nil {
		return err
	}
	msg := strings.ReplaceAll(r.Message, "\r\n", "\n")
	if rest := strings.TrimRight(c.buf.String(), "\n"); rest != "" {
		msg += " " + rest
	}
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, "********")
	}
	t := r.Time
	if t.IsZero() {
		t = c.o.Now()
	}
	line := fmt.Sprintf("%s %c %s: %s\n", t.Format("2006/01/02 15:04:05"), letter(r.Level), c.o.Tag, msg)
	if c.o.Stdout != nil && c.o.StdoutLevel >= need {
		c.count(io.WriteString(c.o.Stdout, line))
	}
	if c.o.Stderr != nil && c.o.StderrLevel >= need {
		c.count(io.WriteString(c.o.Stderr, line))
	}
	if c.file != nil && c.o.FileLevel >= need {
		c.count(0, c.file.write(line))
	}
	if c.syslog != nil && c.o.SyslogLevel >= need {
		c.count(0, c.syslog.write(severity(r.Level), msg))
	}
	return nil
}

func (c *core) count(_ int, err error) {
	if err != nil {
		c.dropped++
	}
}

func letter(l slog.Level) byte {
	switch {
	case l >= slog.LevelError:
		return 'E'
	case l >= slog.LevelWarn:
		return 'W'
	case l >= slog.LevelInfo:
		return 'I'
	}
	return 'D'
}
