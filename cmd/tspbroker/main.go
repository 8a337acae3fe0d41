// Command tspbroker runs the project's test TSP broker (internal/testbroker).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "tspbroker: not built yet")
	os.Exit(1)
}
