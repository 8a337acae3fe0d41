package main

import (
	"fmt"
	"io"
)

// Replaced by the configuration work (issue 3).
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "gogoc check: not built yet")
	return 1
}

func cmdImport(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "gogoc import: not built yet")
	return 1
}
