//go:build lab

package tunnel

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jsklein/gogoc/tsp"
)

// TestLab keeps a v6udpv4 lab up for scripts/bench-tunnel.sh. With
// GOGOC_TUNNEL_LAB=<dir> it writes the lab's names and addresses to
// <dir>/ready as shell assignments and holds until <dir>/stop exists.
// GOGOC_TUNNEL_LAB_PLAIN=1 runs both ends without offloads.
func TestLab(t *testing.T) {
	dir := os.Getenv("GOGOC_TUNNEL_LAB")
	if dir == "" {
		t.Skip("set GOGOC_TUNNEL_LAB=<dir> to hold a lab up (scripts/bench-tunnel.sh)")
	}
	plain := os.Getenv("GOGOC_TUNNEL_LAB_PLAIN") == "1"
	l := newLabWith(t, V6UDPV4, false, plain)
	tun := l.up(t, Config{DefaultRoute: true, DisableOffload: plain})
	env := fmt.Sprintf("CLIENT_NS=%s\nBROKER_NS=%s\nINET_NS=%s\nCLIENT_V4=%v\nBROKER_V4=%v\nCLIENT_V6=%v\nSERVER_V6=%v\nINET_V6=%v\nLAB_PID=%d\n",
		l.client.name, l.broker.name, l.inet.name, l.clientV4, l.brokerV4, labClientV6, labServerV6, labInetV6, os.Getpid())
	if err := os.WriteFile(dir+"/ready.tmp", []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+"/ready.tmp", dir+"/ready"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(dir + "/stop"); err == nil {
			break
		}
	}
	t.Logf("client %+v", tun.Stats())
	t.Logf("broker %+v", l.fwd.Stats())
}
