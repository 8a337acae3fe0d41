//go:build !linux

package main

import "os"

// isTerminal is false off Linux: gogoc only runs there, and never asking
// is the safe answer.
func isTerminal(*os.File) bool { return false }
