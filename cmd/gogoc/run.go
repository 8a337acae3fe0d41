package main

import (
	"fmt"
	"io"
)

// Replaced by the data-plane work (issue 4).
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "gogoc run: not built yet")
	return 1
}
