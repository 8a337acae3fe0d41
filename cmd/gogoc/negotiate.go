package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/internal/jsonw"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/tsp"
)

// negotiation is what `gogoc negotiate` prints: the offer plus how it was
// got. The json tags document the output; marshal writes it.
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
	fs := flag.NewFlagSet("gogoc negotiate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	accept := fs.Bool("accept", false, "accept the offer instead of rejecting it")
	verbose := fs.Bool("v", false, "log the protocol steps to stderr")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	c, ok := bf.config(fs, "gogoc negotiate", stderr)
	if !ok {
		return 2
	}
	req, creds := tspParams(c)
	level := logx.LevelWarn
	if *verbose {
		level = logx.LevelDebug
	}
	log := logx.Writer(stderr, level)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dialer := &tsp.NetDialer{IPv6: req.Type == tsp.V4V6}
	n := &tsp.Negotiator{Dial: dialer.Dial, Request: req, Creds: creds, Log: log}
	res, err := n.Negotiate(ctx, c.Server)
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
	b, err := negotiation{Server: res.Server, Transport: string(res.Session.T.Network()),
		Version: res.Session.Version, Mechanism: res.Session.Mechanism, Offer: res.Offer}.marshal()
	if err == nil {
		_, err = stdout.Write(b)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gogoc negotiate: %v\n", err)
		return 1
	}
	return 0
}

// marshal renders n indented by two spaces with a final newline, as
// encoding/json's Encoder with SetIndent("", "  ") did.
func (n negotiation) marshal() ([]byte, error) {
	w := jsonw.NewWriter("  ")
	w.BeginObject()
	for _, f := range [...]struct{ key, val string }{
		{"server", n.Server}, {"transport", n.Transport}, {"version", n.Version}, {"mechanism", n.Mechanism},
	} {
		w.Key(f.key)
		w.String(f.val)
	}
	w.Key("offer")
	if n.Offer == nil {
		w.Null()
	} else {
		writeOfferJSON(w, n.Offer)
	}
	w.EndObject()
	b, err := w.Bytes()
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
