package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/uci"
)

// importUCI is what `gogoc import` does: legacy file in, UCI text out.
func importUCI(t testing.TB, c *Config) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := uci.Write(&b, c.UCI()); err != nil {
		t.Fatalf("write: %v", err)
	}
	return b.Bytes()
}

// Realistic gogoc.conf files: importing each and reading the result as UCI
// must give the same Config.
var legacyFiles = map[string]string{
	"anonymous host": `
# gogoc.conf from a laptop
server=anon.broker.example.net
auth_method=anonymous
host_type=host
template=linux
`,
	"authenticated router with a /56": `
userid=alice
passwd=s3cret
server=broker.example.net:3653
auth_method=digest-md5
host_type=router
prefixlen=56
if_prefix=br-lan
subnet_id=2a
dns_server=ns1.example.net:ns2.example.net
dns_servers_ra=2001:db8:0:2a::53
tunnel_mode=v6v4
if_tunnel_v6v4=sit1
template=openwrt
`,
	"NAT v6udpv4": "userid=bob\r\npasswd=hunter2\r\nserver=192.0.2.10\r\nauth_method=any\r\n" +
		"tunnel_mode=v6udpv4\r\nif_tunnel_v6udpv4=tun0\r\nkeepalive=yes\r\nkeepalive_interval=15\r\n" +
		"client_v4=192.168.1.20\r\nretry_delay=10\r\nretry_delay_max=120\r\nauto_retry_connect=yes\r\n",
	"broker list settings": `
server=[2001:db8::1]:443
auth_method=plain
userid=carol
passwd=pw
broker_list=/var/lib/gogoc/brokers.txt
last_server=/var/lib/gogoc/last.txt
always_use_same_server=yes
tcp_fallback_delay=0
log_file=3
log_filename=/var/log/gogoc.log
log_rotation_size=1024
log_rotation_delete=yes
syslog_facility=LOCAL5
log_syslog=1
log_stderr=0
`,
	"values that need quoting": `
server=broker.example.net
auth_method=passdss-3des-1
userid=dave o'brien
passwd=it's a "secret" #1; \o/ 'x'
gogoc_dir=/opt/gogoc dir
server_key_policy=tofu
known_keys=/etc/gogoc/keys.pub
`,
	"v4v6 with every new key": `
server=[2001:db8::1]
auth_method=anonymous
enabled=no
tunnel_mode=v4v6
if_tunnel_v4v6=ipip6
client_v6=2001:db8::99
host_type=host
if_prefix=lan0
prefixlen=24
wan_interface=wan6
ra=none
data_plane=kernel
status_file=/var/run/gogoc/other.json
keepalive=no
keepalive_interval=0
keepalive_misses=7
keepalive_timeout=9
route_metric=10
proxy_client=yes
haccess_proxy_enabled=yes
haccess_web_enabled=yes
haccess_document_root=/www
dslite_server=192.0.0.5
dslite_client=192.0.0.6
log_console=2
log_rotation=no
`,
}

func TestImportRoundTrip(t *testing.T) {
	for name, text := range legacyFiles {
		t.Run(name, func(t *testing.T) {
			orig, _, err := Parse("gogoc.conf", []byte(text), FormatLegacy)
			if err != nil {
				t.Fatalf("legacy: %v", err)
			}
			out := importUCI(t, orig)
			if !bytes.HasPrefix(out, []byte("config gogoc 'main'\n")) {
				t.Errorf("import output starts %q", out)
			}
			back, warns, err := Parse("/etc/config/gogoc", out, FormatUCI)
			if err != nil || len(warns) > 0 {
				t.Fatalf("import output refused: %v %v\n%s", err, warns, out)
			}
			if !reflect.DeepEqual(orig, back) {
				t.Errorf("round trip changed the config\nlegacy: %+v\nuci:    %+v\n%s", *orig, *back, out)
			}
		})
	}
}

// The import carries the password exactly, quoted as UCI needs it.
func TestImportQuoting(t *testing.T) {
	c, _, err := Parse("g", []byte(legacyFiles["values that need quoting"]), FormatLegacy)
	if err != nil {
		t.Fatal(err)
	}
	out := string(importUCI(t, c))
	for _, line := range []string{
		`	option enabled '1'`,
		`	option userid 'dave o'\''brien'`,
		`	option passwd 'it'\''s a "secret" #1; \o/ '\''x'\'''`,
		`	option gogoc_dir '/opt/gogoc dir'`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q in\n%s", line, out)
		}
	}
	// Defaults are left out: the file says only what differs.
	if strings.Contains(out, "retry_delay") || strings.Contains(out, "template") {
		t.Errorf("defaults or ignored keys written:\n%s", out)
	}
}

// A UCI file read and written again keeps its meaning too (LuCI style,
// lists).
func TestUCIRoundTrip(t *testing.T) {
	in := `
config gogoc 'main'
	option enabled '1'
	option server 'broker.example.net'
	option auth_method 'plain'
	option userid 'u'
	option passwd 'p w'
	option host_type 'router'
	option if_prefix 'br-lan'
	option prefixlen '48'
	option subnet_id 'beef'
	list dns_servers_ra '2001:db8::53'
	list dns_servers_ra 'fe80::1'
	list dns_server 'ns1.example.net'
	option keepalive 'on'
`
	c, _, err := Parse("a", []byte(in), FormatUCI)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := Parse("b", importUCI(t, c), FormatUCI)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Errorf("got %+v\nwant %+v", *back, *c)
	}
}

func BenchmarkParseUCI(b *testing.B) {
	data, err := os.ReadFile("../openwrt/gogoc/files/gogoc.config")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("gogoc", data, FormatUCI); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLegacy(b *testing.B) {
	data, err := os.ReadFile("gogoc.conf.example")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("gogoc.conf", data, FormatLegacy); err != nil {
			b.Fatal(err)
		}
	}
}
