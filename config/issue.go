package config

import (
	"strconv"
	"strings"
)

// Issue is one problem (or warning) about a configuration, at the place a
// person has to look: "/etc/config/gogoc:12: option retry_delay: 5000 out of
// range 0..3600". Messages never hold the password.
type Issue struct {
	File string
	Line int // 0 when the key is absent from the file
	// Stmt is how the key is written in the file: "option" or "list" in
	// UCI, empty in gogoc.conf.
	Stmt string
	Key  string
	Msg  string
}

func (i *Issue) Error() string {
	var b strings.Builder
	if i.File != "" {
		b.WriteString(i.File)
		if i.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(i.Line))
		}
		b.WriteString(": ")
	} else if i.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(i.Line))
		b.WriteString(": ")
	}
	if i.Key != "" {
		if i.Stmt != "" {
			b.WriteString(i.Stmt)
			b.WriteByte(' ')
		}
		b.WriteString(i.Key)
		b.WriteString(": ")
	}
	b.WriteString(i.Msg)
	return b.String()
}

// Issues is a list of problems. As an error it prints one per line.
type Issues []*Issue

func (l Issues) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap exposes each Issue to errors.As.
func (l Issues) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
