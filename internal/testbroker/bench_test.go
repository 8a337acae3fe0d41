package testbroker

import (
	"testing"

	"github.com/jsklein/gogoc/internal/logx"
)

// benchConfig lifts the session limits: every iteration leaves an
// established session behind until its lease ends.
func benchConfig() Config {
	return Config{Log: logx.Discard(), Limits: Limits{MaxSessions: 1 << 20, MaxPerSource: 1 << 20}}
}

// Full negotiations against a live server, as the client benchmarks will
// run them: version, anonymous, request, accept.
func BenchmarkSessionUDP(b *testing.B) {
	_, udp, _ := startServer(b, benchConfig())
	req := createMsg("v6anyv4", "192.0.2.10", 30, -1)
	for b.Loop() {
		c := dialUDP(b, udp)
		anonUDP(b, c, req)
		c.x(msgAccept)
		c.conn.Close()
	}
}

func BenchmarkSessionTCP(b *testing.B) {
	_, _, tcp := startServer(b, benchConfig())
	req := createMsg("v6v4", "127.0.0.1", 30, -1)
	for b.Loop() {
		c := dialTCP(b, tcp)
		c.x(msgVersion)
		c.x(msgAnonymous)
		c.write(req)
		c.framed()
		c.write(msgAccept)
		c.conn.Close()
	}
}
