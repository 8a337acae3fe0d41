package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/testbroker"
)

func startTestBroker(t *testing.T) netip.AddrPort {
	t.Helper()
	srv, err := testbroker.New(testbroker.Config{
		Auth:     []string{testbroker.AuthAnonymous, testbroker.AuthDigestMD5},
		Users:    map[string]string{"alice": "pw-never-printed"},
		ServerV4: netip.MustParseAddr("127.0.0.1"), ServerV6: netip.MustParseAddr("2001:db8:ab::1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// One port for both transports, as a real broker has.
	for i := 0; ; i++ {
		udp, _, err := srv.Start("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := srv.Start("", udp.String()); err == nil {
			t.Cleanup(func() { srv.Close() })
			return udp
		}
		if i == 20 {
			t.Fatal("no port free for both UDP and TCP")
		}
	}
}

func TestNegotiateCommand(t *testing.T) {
	addr := startTestBroker(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "gogoc.conf")
	body := "server=" + addr.String() + "\nauth_method=digest-md5\nuserid=alice\npasswd=pw-never-printed\n" +
		"host_type=router\nif_prefix=br-lan\nprefixlen=56\ntunnel_mode=v6v4\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"negotiate", "-f", conf, "-v"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got struct {
		Transport, Mechanism string
		Offer                struct {
			Type   string `json:"type"`
			Prefix string `json:"prefix"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if got.Transport != "udp" || got.Mechanism != "DIGEST-MD5" || got.Offer.Type != "v6v4" || !strings.HasSuffix(got.Offer.Prefix, "/56") {
		t.Errorf("unexpected result %+v", got)
	}
	if strings.Contains(out.String()+errOut.String(), "pw-never-printed") {
		t.Error("password printed")
	}

	// Flags override the file; a bad value is refused before any traffic.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"negotiate", "-f", conf, "-mode", "bogus"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "tunnel_mode") {
		t.Errorf("bogus mode: exit %d, %s", code, errOut.String())
	}
}

func TestNegotiateCommandUnreachable(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"negotiate", "-server", "127.0.0.1:9", "-mode", "v6udpv4", "-timeout", "3s"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "refused") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
