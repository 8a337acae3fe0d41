// Command gogoc is the TSP tunnel-broker client. Sub-commands: run (the
// default), status, reconnect, negotiate, check, import, version.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a sub-command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "negotiate":
		return cmdNegotiate(args, stdout, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "import":
		return cmdImport(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "gogoc", version)
		return 0
	case "run":
		return cmdRun(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "reconnect":
		return cmdReconnect(args, stdout, stderr)
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gogoc: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gogoc [command] [flags]

commands:
  run        negotiate and keep the tunnel up (default)
  status     show the running daemon's state (--json for programs)
  reconnect  ask the running daemon for a new tunnel (SIGUSR1)
  negotiate  negotiate with the broker and print the offer as JSON; changes nothing
  check      validate a configuration and print it (password masked)
  import     convert a legacy gogoc.conf to UCI
  version    print the version
`)
}
