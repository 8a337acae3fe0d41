package uci

import (
	"strconv"
	"strings"
)

// Error is one syntax error. It never quotes a value from the file, so a
// password in a broken line cannot reach a log through it.
type Error struct {
	File string
	Line int
	// Stmt is the statement keyword ("config", "option", "list",
	// "package") when the error is inside one.
	Stmt string
	// Name is the option or list name, when it was read before the error.
	Name string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Stmt != "" {
		b.WriteString(e.Stmt)
		if e.Name != "" {
			b.WriteByte(' ')
			b.WriteString(e.Name)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every syntax error of a file, in file order.
type ErrorList []*Error

// Error gives one error per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find the individual errors.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
