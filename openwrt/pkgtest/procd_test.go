package pkgtest

import (
	"bufio"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procd is a model of OpenWrt's procd as the package's scripts meet it
// through ubus, written from procd's service/service.c and
// service/instance.c. It runs in the test process and serves the ubus
// client (this test binary as /bin/ubus in the chroot) on an abstract
// unix socket. What it models:
//
//   - service set/add (service_update, service_instance_update,
//     instance_update): a new instance is started, an instance whose
//     configuration changed (instance_config_changed: command, env, the
//     MD5 of every "file" taken when the message arrives, user, group,
//     capabilities, jail, no_new_privs, respawn, term_timeout, ...) is
//     restarted (SIGTERM, the new process only once the old one has
//     exited), an unchanged one is left alone, one missing from a "set"
//     is stopped; all asynchronously: ubus returns before any of it;
//   - service delete (service_delete): every instance gets SIGTERM,
//     SIGKILL after term_timeout; the call does not wait;
//   - service signal (instance_signal): the signal, SIGHUP by default;
//     for "odhcpd" it goes to the odhcpd model;
//   - service list: the instances with running and pid;
//   - respawn (instance_exit): an instance that exits unasked is started
//     again after respawn_timeout, and given up after respawn_retry
//     quick exits (crash loop);
//   - user and group (instance_config_parse): names that do not resolve in
//     /etc/passwd and /etc/group are dropped silently; with a "jail" and
//     /sbin/ujail present the process is started as procd's jail_run
//     builds it (ujail -t term_timeout -n name -U user -G group -C caps
//     -c -- command), without ujail the jail is dropped and procd itself
//     switches uid and gid, which leaves the process no capabilities.
//
// Seconds of respawn_timeout pass as tenths here, so the tests do not wait
// for procd's real back-off. The gogoc daemon itself is the test binary
// under the name /usr/sbin/gogoc (fakeDaemon): a command "/usr/sbin/gogoc
// run ..." starts that instead of the real binary, wherever it is
// executed (here or in the ujail model).
type procd struct {
	o      *owrt
	ln     net.Listener
	odhcpd *odhcpd

	mu       sync.Mutex
	services map[string]map[string]*instance
	closed   bool
	wg       sync.WaitGroup
}

// instance is one service instance, as procd's struct service_instance.
type instance struct {
	svc, name string
	conf      instanceConf
	key       string // what instance_config_changed compares
	cmd       *exec.Cmd
	pending   bool // a process is running (proc.pending)
	halt      bool
	restart   bool
	respawn   bool
	crashes   int
	started   time.Time
	timer     *time.Timer
	deleted   bool
}

type instanceConf struct {
	Command      []string          `json:"command"`
	Env          map[string]string `json:"env"`
	File         []string          `json:"file"`
	Netdev       []string          `json:"netdev"`
	Respawn      []string          `json:"respawn"`
	TermTimeout  *int              `json:"term_timeout"`
	User         string            `json:"user"`
	Group        string            `json:"group"`
	Capabilities string            `json:"capabilities"`
	Seccomp      string            `json:"seccomp"`
	NoNewPrivs   bool              `json:"no_new_privs"`
	Stdout       bool              `json:"stdout"`
	Stderr       bool              `json:"stderr"`
	ReloadSignal int               `json:"reload_signal"`
	Jail         *struct {
		Name  string            `json:"name"`
		Mount map[string]string `json:"mount"`
	} `json:"jail"`
	raw json.RawMessage
}

// Paths in the chroot the models share with the scripts.
const (
	ubusSockFile = "/var/run/ubus/model" // holds the abstract socket's name
	fakeDaemon   = "/sbin/uci"           // the test binary
	daemonPath   = "/usr/sbin/gogoc"
)

func startProcd(o *owrt) *procd {
	o.t.Helper()
	name := fmt.Sprintf("@gogoc-pkgtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.Listen("unix", name)
	if err != nil {
		o.t.Fatal(err)
	}
	p := &procd{o: o, ln: ln, services: map[string]map[string]*instance{}}
	p.odhcpd = newOdhcpd(o)
	o.write(ubusSockFile, name, 0o644)
	p.wg.Add(1)
	go p.serve()
	o.t.Cleanup(p.close)
	return p
}

func (p *procd) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			var req struct{ Args []string }
			if err := json.NewDecoder(c).Decode(&req); err != nil {
				return
			}
			code, out := p.call(req.Args)
			json.NewEncoder(c).Encode(struct {
				Code int
				Out  string
			}{code, out})
		}()
	}
}

// close stops every process the model started, as a shutdown would
// without running any script.
func (p *procd) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	var cmds []*exec.Cmd
	for _, s := range p.services {
		for _, in := range s {
			if in.timer != nil {
				in.timer.Stop()
			}
			if in.pending {
				cmds = append(cmds, in.cmd)
			}
		}
	}
	p.mu.Unlock()
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGKILL)
	}
	p.odhcpd.close()
	p.wg.Wait()
}

// ubus status codes (libubus's enum ubus_msg_status) as the cli's exit code.
const (
	statusInvalidCommand  = 1
	statusInvalidArgument = 2
	statusMethodNotFound  = 3
	statusNotFound        = 4
)

// call runs one `ubus [options] call <object> <method> [<message>]`.
func (p *procd) call(args []string) (int, string) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-t" || args[0] == "-s" {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) < 3 || args[0] != "call" {
		return statusInvalidCommand, ""
	}
	obj, method, msg := args[1], args[2], "{}"
	if len(args) > 3 {
		msg = args[3]
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		return statusInvalidArgument, ""
	}
	switch obj {
	case "service":
		return p.service(method, m)
	case "dhcp":
		return p.odhcpd.ubus(method)
	}
	return statusNotFound, ""
}

func msgString(m map[string]json.RawMessage, k string) string {
	var s string
	json.Unmarshal(m[k], &s)
	return s
}

func (p *procd) service(method string, m map[string]json.RawMessage) (int, string) {
	name := msgString(m, "name")
	switch method {
	case "set", "add":
		if name == "" {
			return statusInvalidArgument, ""
		}
		var insts map[string]json.RawMessage
		if raw, ok := m["instances"]; ok {
			if err := json.Unmarshal(raw, &insts); err != nil {
				return statusInvalidArgument, ""
			}
		}
		p.update(name, insts, method == "add")
		return 0, ""
	case "delete":
		p.mu.Lock()
		defer p.mu.Unlock()
		s, ok := p.services[name]
		if !ok {
			return statusNotFound, ""
		}
		for n, in := range s {
			if only := msgString(m, "instance"); only == "" || only == n {
				p.stop(in, true)
			}
		}
		return 0, ""
	case "signal":
		sig := syscall.SIGHUP
		if raw, ok := m["signal"]; ok {
			var n int
			json.Unmarshal(raw, &n)
			sig = syscall.Signal(n)
		}
		if name == "odhcpd" {
			p.odhcpd.signal(sig)
			return 0, ""
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, in := range p.services[name] {
			if in.pending {
				in.cmd.Process.Signal(sig)
			}
		}
		return 0, ""
	case "list":
		p.mu.Lock()
		defer p.mu.Unlock()
		out := map[string]any{}
		for sn, s := range p.services {
			if name != "" && sn != name {
				continue
			}
			insts := map[string]any{}
			for n, in := range s {
				v := map[string]any{"running": in.pending}
				if in.pending {
					v["pid"] = in.cmd.Process.Pid
				}
				insts[n] = v
			}
			out[sn] = map[string]any{"instances": insts}
		}
		b, _ := json.Marshal(out)
		return 0, string(b)
	}
	return statusMethodNotFound, ""
}

// update is service_update's instance handling: vlist_update, add each
// instance, vlist_flush (only for "set").
func (p *procd) update(name string, insts map[string]json.RawMessage, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.services[name]
	if !ok {
		s = map[string]*instance{}
		p.services[name] = s
	}
	seen := map[string]bool{}
	for n, raw := range insts {
		seen[n] = true
		var c instanceConf
		if err := json.Unmarshal(raw, &c); err != nil {
			p.o.event("procd", "bad instance "+n+": "+err.Error())
			continue
		}
		c.raw = raw
		in := &instance{svc: name, name: n, conf: c, key: p.configKey(c)}
		in.respawn = c.Respawn != nil
		old, ok := s[n]
		if !ok {
			s[n] = in
			p.start(in)
			continue
		}
		// instance_update
		changed := old.key != in.key
		if !old.pending || old.halt {
			p.move(old, in)
			p.start(old)
		} else {
			if changed {
				p.restartInstance(old)
			}
			p.move(old, in)
		}
	}
	if add {
		return
	}
	for n, in := range s {
		if !seen[n] {
			p.stop(in, true)
		}
	}
}

func (p *procd) move(dst, src *instance) {
	dst.conf, dst.key, dst.respawn = src.conf, src.key, src.respawn
	dst.crashes = 0
}

// configKey is what instance_config_changed compares: the parameters
// that restart an instance, with each "file" replaced by its MD5 now
// (instance_file_update runs when the message arrives).
func (p *procd) configKey(c instanceConf) string {
	var m map[string]json.RawMessage
	json.Unmarshal(c.raw, &m)
	delete(m, "data") // data changes only trigger service.data.update
	delete(m, "triggers")
	sums := map[string]string{}
	for _, f := range c.File {
		b, err := os.ReadFile(p.o.path(f))
		if err != nil {
			sums[f] = "-"
			continue
		}
		sums[f] = fmt.Sprintf("%x", md5.Sum(b))
	}
	// procd keeps the resolved ids, not the names it could not resolve.
	uid, gid, _ := p.o.lookupUser(c.User)
	ggid, gok := p.o.lookupGroup(c.Group)
	b, _ := json.Marshal(struct {
		M    map[string]json.RawMessage
		Sums map[string]string
		U, G int
		GOK  bool
	}{m, sums, uid, gid, gok && ggid >= 0})
	return string(b)
}

// start is instance_start.
func (p *procd) start(in *instance) {
	if p.closed {
		return
	}
	if in.pending {
		if in.halt {
			in.restart = true
		}
		return
	}
	in.restart, in.halt = false, false
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	cmd, err := p.command(in)
	if err != nil {
		p.o.event("procd", fmt.Sprintf("%s::%s not started: %v", in.svc, in.name, err))
		return
	}
	if err := cmd.Start(); err != nil {
		p.o.event("procd", fmt.Sprintf("%s::%s exec failed: %v", in.svc, in.name, err))
		return
	}
	in.cmd, in.pending, in.started = cmd, true, time.Now()
	p.o.event("procd", fmt.Sprintf("start %s::%s pid %d", in.svc, in.name, cmd.Process.Pid))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := cmd.Wait()
		p.exited(in, cmd, err)
	}()
}

// command builds the process as instance_run and jail_run do.
func (p *procd) command(in *instance) (*exec.Cmd, error) {
	c := in.conf
	if len(c.Command) == 0 {
		return nil, errors.New("command not set")
	}
	argv := slices.Clone(c.Command)
	attr := &syscall.SysProcAttr{Chroot: p.o.root, Setpgid: true}
	user, group := c.User, c.Group
	uid, ugid, uok := p.o.lookupUser(user)
	if !uok {
		user = "" // getpwnam failed: procd forgets the name
	}
	ggid, gok := p.o.lookupGroup(group)
	if !gok {
		group = ""
	}
	jailed := c.Jail != nil && p.o.exists("/sbin/ujail")
	if jailed {
		j := []string{"/sbin/ujail", "-t", strconv.Itoa(termTimeout(c))}
		if c.Jail.Name != "" {
			j = append(j, "-n", c.Jail.Name)
		}
		if c.Seccomp != "" {
			j = append(j, "-S", c.Seccomp)
		}
		if user != "" {
			j = append(j, "-U", user)
		}
		if group != "" {
			j = append(j, "-G", group)
		}
		if c.Capabilities != "" {
			j = append(j, "-C", c.Capabilities)
		}
		if c.NoNewPrivs {
			j = append(j, "-c")
		}
		for m, rw := range c.Jail.Mount {
			if rw == "1" {
				j = append(j, "-w", m)
			} else {
				j = append(j, "-r", m)
			}
		}
		argv = append(append(j, "--"), argv...)
	} else {
		// Without a jail procd switches the ids itself: initgroups,
		// setgid, setuid. No capability survives that.
		cred := &syscall.Credential{Uid: 0, Gid: 0}
		if user != "" {
			cred.Uid, cred.Gid = uint32(uid), uint32(ugid)
			cred.Groups = p.o.groupsOf(user, ugid)
		}
		if group != "" {
			cred.Gid = uint32(ggid)
		}
		if user != "" || group != "" {
			attr.Credential = cred
		}
	}
	cmd := modelExec(argv)
	cmd.SysProcAttr = attr
	cmd.Dir = "/"
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	return cmd, nil
}

// modelExec maps the gogoc daemon onto the fake one (the test binary
// named /usr/sbin/gogoc); anything else runs as it is.
func modelExec(argv []string) *exec.Cmd {
	path := argv[0]
	if path == daemonPath && len(argv) > 1 && argv[1] == "run" {
		path = fakeDaemon
	}
	return &exec.Cmd{Path: path, Args: argv}
}

func termTimeout(c instanceConf) int {
	if c.TermTimeout != nil {
		return *c.TermTimeout
	}
	return 5
}

// stop is instance_stop.
func (p *procd) stop(in *instance, halt bool) {
	if !in.pending {
		if halt {
			p.delete(in)
		}
		return
	}
	in.halt = halt
	in.restart, in.respawn = false, false
	p.term(in)
}

// restartInstance is instance_restart (no reload_signal in gogoc's script).
func (p *procd) restartInstance(in *instance) {
	if !in.pending {
		return
	}
	if in.conf.ReloadSignal != 0 {
		in.cmd.Process.Signal(syscall.Signal(in.conf.ReloadSignal))
		return
	}
	in.halt, in.restart = true, true
	p.term(in)
}

// term sends SIGTERM and, unless jailed (ujail keeps its own timeout),
// SIGKILL after term_timeout.
func (p *procd) term(in *instance) {
	cmd := in.cmd
	cmd.Process.Signal(syscall.SIGTERM)
	if in.conf.Jail != nil && p.o.exists("/sbin/ujail") {
		return
	}
	if in.timer != nil {
		in.timer.Stop()
	}
	in.timer = time.AfterFunc(time.Duration(termTimeout(in.conf))*time.Second, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if in.pending && in.cmd == cmd && in.halt {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	})
}

func (p *procd) delete(in *instance) {
	in.deleted = true
	if s := p.services[in.svc]; s != nil && s[in.name] == in {
		delete(s, in.name)
	}
}

// exited is instance_exit.
func (p *procd) exited(in *instance, cmd *exec.Cmd, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.cmd != cmd {
		return
	}
	in.pending = false
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	p.o.event("procd", fmt.Sprintf("exit %s::%s pid %d: %v", in.svc, in.name, cmd.Process.Pid, err))
	if p.closed {
		return
	}
	restart := false
	switch {
	case in.halt:
		if in.restart {
			restart = true
		} else {
			p.delete(in)
		}
	case in.restart:
		restart = true
	case in.respawn:
		threshold, timeout, retry := 3600, 5, 5
		for i, v := range in.conf.Respawn {
			n, _ := strconv.Atoi(v)
			switch i {
			case 0:
				threshold = n
			case 1:
				timeout = n
			case 2:
				retry = n
			}
		}
		if time.Since(in.started) < time.Duration(threshold)*time.Second {
			in.crashes++
		} else {
			in.crashes = 0
		}
		if in.crashes > retry && retry > 0 {
			p.o.event("procd", fmt.Sprintf("%s::%s in a crash loop", in.svc, in.name))
			in.restart, in.respawn, in.halt = false, false, true
			return
		}
		in.timer = time.AfterFunc(time.Duration(timeout)*100*time.Millisecond, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if !in.pending && !in.halt && !in.deleted && in.respawn {
				p.start(in)
			}
		})
	}
	if restart {
		p.start(in)
	}
}

// powerCut ends every process at once, without SIGTERM, and forgets the
// services, as a reboot does to procd.
func (p *procd) powerCut() {
	p.mu.Lock()
	var insts []*instance
	for _, s := range p.services {
		for _, in := range s {
			if in.timer != nil {
				in.timer.Stop()
			}
			in.halt, in.restart, in.respawn = true, false, false
			if in.pending {
				in.cmd.Process.Signal(syscall.SIGKILL)
				insts = append(insts, in)
			}
		}
	}
	p.services = map[string]map[string]*instance{}
	p.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		n := 0
		for _, in := range insts {
			if in.pending {
				n++
			}
		}
		p.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// running reports the pids of the service's running instances.
func (p *procd) running(svc string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, in := range p.services[svc] {
		if in.pending {
			pids = append(pids, in.cmd.Process.Pid)
		}
	}
	return pids
}

// idle reports that no process of the service is being stopped or
// restarted and none waits to respawn.
func (p *procd) idle(svc string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.services[svc] {
		if in.halt && in.pending || in.restart || (!in.pending && in.respawn && !in.halt) {
			return false
		}
	}
	return true
}

// lookupUser is getpwnam on the chroot's /etc/passwd.
func (o *owrt) lookupUser(name string) (uid, gid int, ok bool) {
	if name == "" {
		return -1, -1, false
	}
	for _, f := range o.dbLines("/etc/passwd") {
		if len(f) >= 4 && f[0] == name {
			u, err1 := strconv.Atoi(f[2])
			g, err2 := strconv.Atoi(f[3])
			if err1 == nil && err2 == nil {
				return u, g, true
			}
		}
	}
	return -1, -1, false
}

// lookupGroup is getgrnam on the chroot's /etc/group.
func (o *owrt) lookupGroup(name string) (int, bool) {
	if name == "" {
		return -1, false
	}
	for _, f := range o.dbLines("/etc/group") {
		if len(f) >= 3 && f[0] == name {
			if g, err := strconv.Atoi(f[2]); err == nil {
				return g, true
			}
		}
	}
	return -1, false
}

// groupsOf is initgroups: the primary group and every group listing user.
func (o *owrt) groupsOf(user string, gid int) []uint32 {
	gs := []uint32{uint32(gid)}
	for _, f := range o.dbLines("/etc/group") {
		if len(f) >= 4 && slices.Contains(strings.Split(f[3], ","), user) {
			if g, err := strconv.Atoi(f[2]); err == nil && !slices.Contains(gs, uint32(g)) {
				gs = append(gs, uint32(g))
			}
		}
	}
	return gs
}

func (o *owrt) dbLines(p string) [][]string {
	b, err := os.ReadFile(o.path(p))
	if err != nil {
		return nil
	}
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, strings.Split(l, ":"))
		}
	}
	return out
}

// runUbusClient is the test binary as /bin/ubus in the chroot: it records
// the call in /tmp/calls.log as the old recorder did and forwards it to
// the procd model.
func runUbusClient() int {
	args := os.Args[1:]
	appendEvent("ubus", strings.Join(args, " "))
	name, err := os.ReadFile(ubusSockFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to connect to ubus")
		return -1 & 0xff
	}
	c, err := net.Dial("unix", strings.TrimSpace(string(name)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to connect to ubus")
		return 255
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(struct{ Args []string }{args}); err != nil {
		return 255
	}
	var resp struct {
		Code int
		Out  string
	}
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil && err != io.EOF {
		return 255
	}
	if resp.Out != "" {
		fmt.Println(resp.Out)
	}
	if resp.Code != 0 {
		fmt.Fprintf(os.Stderr, "Command failed: %s\n", ubusStatus(resp.Code))
	}
	return resp.Code
}

func ubusStatus(code int) string {
	switch code {
	case statusInvalidCommand:
		return "Invalid command"
	case statusInvalidArgument:
		return "Invalid argument"
	case statusMethodNotFound:
		return "Method not found"
	case statusNotFound:
		return "Not found"
	}
	return "Unknown error"
}

// appendEvent adds "who|what" to /tmp/calls.log (one write, O_APPEND, so
// lines from concurrent processes do not interleave).
func appendEvent(who, what string) {
	f, err := os.OpenFile("/tmp/calls.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return
	}
	f.Write([]byte(who + "|" + what + "\n"))
	f.Close()
}

// event records a model's event in the chroot's call log.
func (o *owrt) event(who, what string) {
	f, err := os.OpenFile(o.path("/tmp/calls.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return
	}
	f.Write([]byte(who + "|" + what + "\n"))
	f.Close()
}
