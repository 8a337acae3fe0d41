package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/internal/caps"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/lan"
)

// cmdRun runs the supervisor (package daemon) until SIGINT or SIGTERM: it
// negotiates, builds the tunnel, keeps it up and reconnects by itself.
// SIGUSR1 asks for a reconnect (`gogoc reconnect`, the OpenWrt hotplug
// script), SIGHUP re-reads the configuration.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gogoc run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	bf.needLAN = true
	bf.raFlags = fs.String("ra-flags", "", "ra_flags: the LAN RAs' flags, comma-separated (managed-config, other-config, home-agent, none); empty keeps the configured ones")
	verbose := fs.Bool("v", false, "debug logging to stderr (log_stderr 3)")
	statusFile := fs.String("status-file", "", "status JSON `file` (default: status_file, "+config.DefaultStatusFile+")")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gogoc run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	// Catch the signals first: their default action would kill a daemon
	// that procd or the hotplug script signals while it starts.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	c, ok := bf.config(fs, "gogoc run", stderr)
	if !ok {
		return 2
	}
	if !c.Enabled {
		// The OpenWrt default ships disabled: say how to turn it on rather
		// than dial a broker the owner has not configured yet.
		fmt.Fprintln(stderr, "gogoc run: disabled by the configuration (set option enabled '1')")
		return 1
	}
	if *statusFile == "" {
		*statusFile = c.StatusFile
	}
	// "-status-file -" keeps no status file; the state files (and a
	// relative log file) then live where the default status file would.
	statusPath, daemonDir := *statusFile, filepath.Dir(*statusFile)
	if statusPath == "-" {
		statusPath, daemonDir = "", filepath.Dir(config.DefaultStatusFile)
	}
	// Before the log file opens there: the directory must be the
	// daemon's own.
	if err := ensureDirs(daemonDir, c); err != nil {
		fmt.Fprintf(stderr, "gogoc run: %v\n", err)
		return 1
	}
	lg, err := logx.New(logOptions(c, *verbose, daemonDir, stdout, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "gogoc run: %v\n", err)
		return 1
	}
	defer lg.Close()
	log := lg
	// privs stays nil when the capabilities cannot be read: then neither
	// the start nor a reload checks them.
	var privs *caps.State
	if s, err := caps.Current(); err != nil {
		log.Warn("cannot read the process's capabilities", "err", err)
	} else {
		privs = &s
		log.Info(privs.Summary())
		if err := checkPrivileges(*privs, c); err != nil {
			log.Error("not starting", "err", err)
			fmt.Fprintf(stderr, "gogoc run: %v\n", err)
			return 1
		}
	}

	var lanSide daemon.LAN // nil outside router mode
	var lanStart func()
	if c.HostType == config.HostTypeRouter {
		l, err := lan.New(lanConfig(c, log))
		if err != nil {
			fmt.Fprintf(stderr, "gogoc run: %v\n", err)
			return 1
		}
		lanSide, lanStart = l, l.Start
	}
	d, err := daemon.New(daemon.Options{
		Config:     c,
		Broker:     daemon.NewTSPBroker(tspParams, log),
		Tunnels:    daemon.SystemTunnels{},
		Log:        log,
		Timings:    daemon.DefaultTimings(),
		StatusFile: statusPath,
		StateDir:   daemonDir,
		LAN:        lanSide,
		WAN:        daemon.NewNetlinkWAN(log),
		OnUp: func(s daemon.Status) {
			// Our address inside the tunnel, via the broker's outer
			// endpoint: IPv6 over IPv4, or IPv4 over IPv6 for v4v6.
			inner, peer := s.ClientIPv6, s.ServerIPv4
			if s.TunnelMode == "v4v6" {
				inner, peer = s.ClientIPv4, s.ServerIPv6
			}
			fmt.Fprintf(stdout, "tunnel up: %s %s %s via %s\n", s.TunnelMode, s.Interface, inner, peer)
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "gogoc run: %v\n", err)
		return 1
	}

	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGUSR1 {
					log.Info("reconnect requested by SIGUSR1")
					d.Reconnect("SIGUSR1")
					continue
				}
				if nc := reload(bf, fs, log, stderr, privs, daemonDir); nc != nil {
					if err := lg.Reconfigure(logOptions(nc, *verbose, daemonDir, stdout, stderr)); err != nil {
						log.Error("SIGHUP: log settings not applied", "err", err)
					}
					d.Reload(nc)
				}
			}
		}
	}()
	log.Info("gogoc starting", "version", version, "pid", os.Getpid(), "server", c.Server, "mode", string(c.TunnelMode))
	if lanStart != nil {
		// The LAN's own prefixes and flags are advertised even while no
		// tunnel is up; Run's end closes the LAN side.
		lanStart()
	}
	if err := d.Run(ctx); err != nil {
		log.Error("stopped", "err", err)
		fmt.Fprintf(stderr, "gogoc run: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// lanConfig maps the router-mode keys onto the LAN side.
func lanConfig(c *config.Config, log *logx.Logger) lan.Config {
	return lan.Config{
		Interface: c.IfPrefix,
		SubnetID:  c.SubnetID,
		Advertise: c.RA != config.RANone,
		DNS:       c.DNSServersRA,
		Managed:   slices.Contains(c.RAFlags, config.RAFlagManaged),
		Other:     slices.Contains(c.RAFlags, config.RAFlagOther),
		HomeAgent: slices.Contains(c.RAFlags, config.RAFlagHomeAgent),
		Log:       log,
	}
}

// reload re-reads the configuration with the same flags on top (SIGHUP).
// A configuration that no longer loads keeps the running one (nil). The
// status file stays where it was until a restart; the directories are
// checked again, since tofu may have been turned on or its file moved.
func reload(bf *brokerFlags, fs *flag.FlagSet, log *logx.Logger, stderr io.Writer, privs *caps.State, daemonDir string) *config.Config {
	c, ok := bf.config(fs, "gogoc reload", stderr)
	if !ok {
		log.Error("SIGHUP: the configuration has errors; keeping the running one")
		return nil
	}
	if privs != nil {
		if err := checkPrivileges(*privs, c); err != nil {
			log.Error("SIGHUP: keeping the running configuration", "err", err)
			return nil
		}
	}
	if err := ensureDirs(daemonDir, c); err != nil {
		log.Error("SIGHUP: keeping the running configuration", "err", err)
		return nil
	}
	if !c.Enabled {
		log.Warn("SIGHUP: the configuration says enabled '0'; stop the service to stop the tunnel")
	}
	log.Info("SIGHUP: configuration re-read")
	return c
}

// logOptions maps the log_* keys onto the destinations; -v turns stderr
// to debug. A relative log file name lives in stateDir.
func logOptions(c *config.Config, verbose bool, stateDir string, stdout, stderr io.Writer) logx.Options {
	o := logx.Options{
		Stdout: stdout, StdoutLevel: int(c.LogConsole),
		Stderr: stderr, StderrLevel: int(c.LogStderr),
		SyslogLevel: int(c.LogSyslog), SyslogFacility: string(c.SyslogFacility),
		FileLevel: int(c.LogFile), Rotate: c.LogRotation, RotateSizeKiB: c.LogRotationSize, RotateDelete: c.LogRotationDelete, RotateKeep: c.LogRotationKeep,
		Secrets: []string{c.Password.Reveal()},
	}
	if verbose {
		o.StderrLevel = 3
	}
	if c.LogFile > 0 && c.LogFilename != "" {
		o.FilePath = c.LogFilename
		if !filepath.IsAbs(o.FilePath) {
			o.FilePath = filepath.Join(stateDir, o.FilePath)
		}
	}
	return o
}
