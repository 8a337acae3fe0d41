package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// terminalPrompt returns a prompt that asks on out about an unknown broker
// key (PASSDSS-3DES-1, server_key_policy strict) and reads the answer from
// in, or nil when in is not a terminal: a daemon's stdin is /dev/null or a
// pipe, where the old client looped for ever (spec §3.6). Asking a person
// is the command's business; the protocol package only takes the Prompt.
func terminalPrompt(in *os.File, out io.Writer) knownkeys.Prompt {
	if in == nil || !isTerminal(in) {
		return nil
	}
	return linePrompt(in, out)
}

// linePrompt asks until it reads Y or N (any case); end of input refuses.
func linePrompt(in io.Reader, out io.Writer) knownkeys.Prompt {
	return func(host string, k knownkeys.Key) (bool, error) {
		br := bufio.NewReader(in)
		for {
			fmt.Fprintf(out, "%s is an unknown broker, key %s. Add its key? (Y/N) ", host, k.Fingerprint())
			ans, err := br.ReadString('\n')
			switch strings.ToLower(strings.TrimSpace(ans)) {
			case "y", "yes":
				return true, nil
			case "n", "no":
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("no answer: %w", err)
			}
		}
	}
}
