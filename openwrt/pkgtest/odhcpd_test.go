package pkgtest

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/uci"
)

// odhcpd is a model of odhcpd's Router Advertisement side, written from
// odhcpd's src/config.c (odhcpd_reload, config_parse_interface,
// set_interface_defaults) and src/router.c (router_setup_interface): it
// reads /etc/config/dhcp and /etc/config/network when it starts and on
// SIGHUP (what `/etc/init.d/odhcpd reload` sends through procd), and
// advertises on the device of every dhcp section whose ra is server,
// hybrid or relay; a section stops advertising with a final RA (router
// lifetime 0). The reload is handled some time after the signal, as the
// real daemon handles it from its event loop, so a script that does not
// wait for odhcpd sees it still advertising. `ubus call dhcp ipv6ra`
// lists the devices in server mode, as handle_ra_pio does. Each start and
// final RA is an event in the call log ("odhcpd-ra|start br-lan",
// "odhcpd-ra|final br-lan").
type odhcpd struct {
	o       *owrt
	delay   time.Duration
	mu      sync.Mutex
	adv     map[string]string // device → ra mode
	pending int
	closed  bool
	wg      sync.WaitGroup
}

func newOdhcpd(o *owrt) *odhcpd {
	d := &odhcpd{o: o, delay: 500 * time.Millisecond, adv: map[string]string{}}
	return d
}

// boot starts odhcpd as the router's boot does: it reads the
// configuration and advertises at once.
func (d *odhcpd) boot() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for dev := range d.adv {
		delete(d.adv, dev)
	}
	d.apply()
}

func (d *odhcpd) signal(sig syscall.Signal) {
	if sig != syscall.SIGHUP {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.pending++
	d.wg.Add(1)
	time.AfterFunc(d.delay, func() {
		defer d.wg.Done()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.pending--
		if !d.closed {
			d.apply()
		}
	})
}

// apply is odhcpd_reload's effect on the RAs: called with mu held.
func (d *odhcpd) apply() {
	want := d.o.odhcpdRA()
	var devs []string
	for dev := range d.adv {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	for _, dev := range devs {
		if _, ok := want[dev]; !ok {
			d.o.event("odhcpd-ra", "final "+dev)
			delete(d.adv, dev)
		}
	}
	devs = devs[:0]
	for dev := range want {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	for _, dev := range devs {
		if _, ok := d.adv[dev]; !ok {
			d.o.event("odhcpd-ra", "start "+dev)
		}
		d.adv[dev] = want[dev]
	}
}

func (d *odhcpd) ubus(method string) (int, string) {
	if method != "ipv6ra" {
		return statusMethodNotFound, ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ifs := map[string][]any{}
	for dev, mode := range d.adv {
		if mode == "server" || mode == "hybrid" {
			ifs[dev] = []any{}
		}
	}
	b, _ := json.Marshal(map[string]any{"interfaces": ifs})
	return 0, string(b)
}

// advertising returns the devices odhcpd advertises on now.
func (d *odhcpd) advertising() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var devs []string
	for dev := range d.adv {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	return devs
}

func (d *odhcpd) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending == 0
}

func (d *odhcpd) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
}

// odhcpdRA reads the committed dhcp and network files as odhcpd does and
// returns device → ra mode for every section that advertises.
func (o *owrt) odhcpdRA() map[string]string {
	out := map[string]string{}
	dhcp, err := o.uciFile("dhcp")
	if err != nil {
		return out
	}
	for _, s := range dhcp.Sections {
		if s.Type != "dhcp" {
			continue
		}
		mode := "disabled" // set_interface_defaults
		if v := opt(s, "ra"); slices.Contains([]string{"server", "relay", "hybrid", "disabled"}, v) {
			mode = v
		}
		if mode == "disabled" {
			continue
		}
		// config_parse_interface: the interface option, else the
		// section's name; the device is netifd's for that interface.
		iface := opt(s, "interface")
		if iface == "" {
			iface = s.Name
		}
		if dev := o.netifdDevice(iface); dev != "" {
			out[dev] = mode
		}
	}
	return out
}

// netifdDevice is the layer-3 device netifd gives a logical interface:
// its device option, or br-<name> for an old-style type bridge, or its
// ifname.
func (o *owrt) netifdDevice(iface string) string {
	network, err := o.uciFile("network")
	if err != nil {
		return ""
	}
	for _, s := range network.Sections {
		if s.Type != "interface" || s.Name != iface {
			continue
		}
		if v := opt(s, "device"); v != "" {
			return v
		}
		if opt(s, "type") == "bridge" {
			return "br-" + iface
		}
		return opt(s, "ifname")
	}
	return ""
}

func opt(s *uci.Section, name string) string {
	if o := s.Option(name); o != nil && len(o.Values) > 0 {
		return o.Values[0]
	}
	return ""
}

func (o *owrt) uciFile(pkg string) (*uci.File, error) {
	b, err := os.ReadFile(o.path("/etc/config/" + pkg))
	if err != nil {
		return nil, err
	}
	return uci.Parse(pkg, b)
}
