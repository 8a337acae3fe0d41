package main

import (
	"fmt"
	"io"
)

func cmdNegotiate(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "gogoc negotiate: not built yet")
	return 1
}
