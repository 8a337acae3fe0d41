package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/tsp"
)

// negotiation is what `gogoc negotiate` prints: the offer plus how it was got.
type negotiation struct {
	Server    string     `json:"server"`
	Transport string     `json:"transport"`
	Version   string     `json:"version"`
	Mechanism string     `json:"mechanism"`
	Offer     *tsp.Offer `json:"offer"`
}

// cmdNegotiate talks to the broker up to the offer, prints it as JSON and
// rejects it, so nothing on the system or at the broker stays changed.
func cmdNegotiate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("negotiate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "broker `host[:port]` or [v6][:port]")
	mode := fs.String("mode", "v6anyv4", "tunnel mode: v6anyv4, v6v4, v6udpv4, v4v6")
	auth := fs.String("auth", "anonymous", "auth method: anonymous, any, plain, digest-md5")
	user := fs.String("user", "", "user id")
	passFile := fs.String("passwd-file", "", "read the password from this `file` (or $GOGOC_PASSWD)")
	router := fs.Bool("router", false, "ask for a delegated prefix")
	prefixLen := fs.Int("prefixlen", 56, "requested prefix length (router)")
	ka := fs.Int("keepalive", 30, "suggested keepalive interval in seconds, 0 for none")
	clientV4 := fs.String("client-v4", "auto", "declared IPv4 endpoint or auto")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	accept := fs.Bool("accept", false, "accept the offer instead of rejecting it")
	verbose := fs.Bool("v", false, "log the protocol steps to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *server == "" {
		fmt.Fprintln(stderr, "gogoc negotiate: -server is required")
		return 2
	}
	pass := secret.String(os.Getenv("GOGOC_PASSWD"))
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			fmt.Fprintf(stderr, "gogoc negotiate: %v\n", err)
			return 1
		}
		pass = secret.String(strings.TrimRight(string(b), "\r\n"))
	}
	req := tsp.Request{Type: tsp.TunnelType(*mode), Keepalive: *ka > 0, KeepaliveInterval: *ka, Router: *router, PrefixLen: *prefixLen}
	if *clientV4 != "auto" {
		a, err := netip.ParseAddr(*clientV4)
		if err != nil {
			fmt.Fprintf(stderr, "gogoc negotiate: -client-v4: %v\n", err)
			return 2
		}
		req.ClientV4 = a
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dialer := &tsp.NetDialer{IPv6: req.Type == tsp.V4V6}
	n := &tsp.Negotiator{Dial: dialer.Dial, Request: req, Log: log,
		Creds: tsp.Credentials{Method: tsp.AuthMethod(*auth), UserID: *user, Password: pass}}
	res, err := n.Negotiate(ctx, *server)
	if err != nil {
		fmt.Fprintf(stderr, "gogoc negotiate: %v\n", err)
		var rd *tsp.RedirectError
		if errors.As(err, &rd) {
			for _, b := range rd.Brokers {
				fmt.Fprintf(stderr, "  broker %s\n", b.ServerString())
			}
		}
		return 1
	}
	defer res.Session.T.Close()
	finish := res.Session.Reject
	if *accept {
		finish = res.Session.Accept
	}
	if err := finish(ctx); err != nil {
		log.Warn("could not close the negotiation cleanly", "err", err)
	}
	out := negotiation{Server: res.Server, Transport: string(res.Session.T.Network()), Version: res.Session.Version,
		Mechanism: res.Session.Mechanism, Offer: res.Offer}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "gogoc negotiate: %v\n", err)
		return 1
	}
	return 0
}
