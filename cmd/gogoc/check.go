package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/uci"
)

// Where the configuration lives when no flag names it: the OpenWrt file
// first, then the old client's file (Fedora path).
const (
	defaultUCIPath    = "/etc/config/gogoc"
	defaultLegacyPath = "/etc/gogoc/gogoc.conf"
)

// defaultConfigFile picks the file to read when none is given:
// uciPath if it exists, else legacyPath.
func defaultConfigFile(uciPath, legacyPath string) (string, config.Format) {
	if _, err := os.Stat(uciPath); err == nil {
		return uciPath, config.FormatUCI
	}
	return legacyPath, config.FormatLegacy
}

// cmdCheck validates a configuration and prints every effective key as
// key=value with the password masked, or every problem, one per line.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	return checkConfig(args, stdout, stderr, defaultUCIPath, defaultLegacyPath)
}

func checkConfig(args []string, stdout, stderr io.Writer, uciPath, legacyPath string) int {
	fs := flag.NewFlagSet("gogoc check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	legacy := fs.String("f", "", "check this legacy `gogoc.conf`")
	uciFile := fs.String("uci", "", "check this UCI `file`")
	shell := fs.Bool("shell", false, "print what OpenWrt's scripts need as shell assignments (gogoc_enabled=1 ...)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gogoc check [-f gogoc.conf | --uci /etc/config/gogoc] [-shell]\n\n"+
			"Prints the effective configuration (password masked) or what is wrong with it.\n"+
			"Without a flag: %s if it exists, else %s.\n"+
			"With -shell, prints the settings the OpenWrt scripts use as shell assignments, or\n"+
			"nothing and exit status 1 if the daemon would refuse the file.\n\n", uciPath, legacyPath)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gogoc check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var path string
	var format config.Format
	switch {
	case *legacy != "" && *uciFile != "":
		fmt.Fprintln(stderr, "gogoc check: give -f or --uci, not both")
		return 2
	case *legacy != "":
		path, format = *legacy, config.FormatLegacy
	case *uciFile != "":
		path, format = *uciFile, config.FormatUCI
	default:
		path, format = defaultConfigFile(uciPath, legacyPath)
	}

	c, ok := load(path, format, "gogoc check", stderr)
	if !ok {
		return 1
	}
	var out bytes.Buffer
	if *shell {
		for _, v := range shellVars(c) {
			fmt.Fprintf(&out, "gogoc_%s=%s\n", v.Key, shellQuote(v.Value))
		}
	} else {
		for _, e := range c.Entries() {
			fmt.Fprintf(&out, "%s=%s\n", e.Key, e.Value)
		}
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "gogoc check: %v\n", err)
		return 1
	}
	if !*shell {
		fmt.Fprintf(stderr, "gogoc check: %s (%s) is valid\n", path, format)
	}
	return 0
}

// shellVars are the settings OpenWrt's init script, hotplug hook and
// helper act on, as the daemon reads them: the scripts take them from
// here instead of reading /etc/config/gogoc with config_get, so the two
// cannot disagree (a daemon in router mode while the scripts leave the
// RAs to odhcpd, a section only one of them uses). Booleans are 1 or 0.
func shellVars(c *config.Config) []config.Entry {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return []config.Entry{
		{Key: "enabled", Value: flag(c.Enabled)},
		{Key: "host_type", Value: string(c.HostType)},
		{Key: "ra", Value: string(c.RA)},
		{Key: "if_prefix", Value: c.IfPrefix},
		{Key: "wan_interface", Value: c.WANInterface},
		{Key: "status_file", Value: c.StatusFile},
		{Key: "if_tunnel_v6v4", Value: c.IfTunnelV6V4},
		{Key: "if_tunnel_v6udpv4", Value: c.IfTunnelV6UDPV4},
		{Key: "if_tunnel_v4v6", Value: c.IfTunnelV4V6},
		{Key: "known_keys", Value: c.KnownKeys},
	}
}

// shellQuote makes any string one word of the POSIX shell's: in single
// quotes nothing is special but the quote itself, which is closed,
// escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cmdImport reads a legacy gogoc.conf and prints the equivalent
// /etc/config/gogoc. The password is in the output, which is meant to be
// redirected into that file.
func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gogoc import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: gogoc import gogoc.conf > /etc/config/gogoc\n\n"+
			"Converts a legacy gogoc.conf to UCI: one config gogoc 'main' section with\n"+
			"enabled '1' and every setting that differs from the default.\n")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	c, ok := load(path, config.FormatLegacy, "gogoc import", stderr)
	if !ok {
		return 1
	}
	var out bytes.Buffer
	// %q keeps an odd file name from breaking out of the comment.
	fmt.Fprintf(&out, "# Imported from %q by gogoc import.\n\n", path)
	if err := uci.Write(&out, c.UCI()); err != nil {
		fmt.Fprintf(stderr, "gogoc import: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "gogoc import: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags parses args; done reports that the command should end now
// with code (after -h, or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	return 2, true
}

// load reads a configuration and prints its warnings, or its problems one
// per line.
func load(path string, format config.Format, cmd string, stderr io.Writer) (*config.Config, bool) {
	c, warnings, err := config.Load(path, format)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	var issues config.Issues
	switch {
	case errors.As(err, &issues):
		for _, i := range issues {
			fmt.Fprintln(stderr, i)
		}
		return nil, false
	case errors.Is(err, fs.ErrPermission):
		// A daemon run as its own user (OpenWrt: gogoc) while the file
		// is root's 0600.
		fmt.Fprintf(stderr, "%s: permission denied reading %s (uid %d): run as a user that can read it, see openwrt/README.md\n", cmd, path, os.Geteuid())
		return nil, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, false
	}
	return c, true
}
