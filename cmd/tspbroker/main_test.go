package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"-udp", "127.0.0.1:0", "-tcp", "127.0.0.1:0", "-user", "alice:secret",
			"-auth", "PLAIN,ANONYMOUS", "-tunnels", "V6UDPV4"}, pw, io.Discard)
		pw.Close()
	}()
	out := bufio.NewScanner(pr)
	addrs := map[string]string{}
	for len(addrs) < 2 && out.Scan() {
		if f := strings.Fields(out.Text()); len(f) == 3 && f[0] == "listening" {
			addrs[f[1]] = f[2]
		}
	}
	const want = "CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN AUTH=ANONYMOUS\r\n"
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.Dial(network, addrs[network])
		if err != nil {
			t.Fatalf("%s %q: %v", network, addrs[network], err)
		}
		defer c.Close()
		msg := "VERSION=2.0.2\r\n"
		if network == "udp" {
			msg = "\xf0\x00\x00\xf0\x00\x00\x00\x01" + msg
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 200)
		n, err := c.Read(buf)
		got := string(buf[:n])
		if network == "udp" && n >= 8 {
			got = got[8:]
		}
		if err != nil || got != want {
			t.Fatalf("%s: %q %v", network, got, err)
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-user", "nopassword"},
		{"-redirect", "ipv4"},
		{"-auth", "PASSDSS-3DES-1"},
		{"-client-pool", "nonsense"},
		{"-udp", "", "-tcp", ""},
		{"extra"},
	} {
		var stderr strings.Builder
		if c := run(context.Background(), args, io.Discard, &stderr); c != 2 {
			t.Errorf("%q: exit %d", args, c)
		}
		if strings.Contains(stderr.String(), "nopassword") {
			t.Errorf("%q: credentials echoed: %s", args, stderr.String())
		}
	}
}
