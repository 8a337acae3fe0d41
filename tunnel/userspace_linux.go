package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
)

// socketBuffer is the send and receive buffer asked for on the tunnel
// socket: bursts of a fast TCP flow must not overflow the kernel default.
const socketBuffer = 4 << 20

// userspace is the Tunnel of NewUserspace: TUN device ⇄ engine ⇄ socket.
type userspace struct {
	session
	dev     *tunDevice
	conn    net.Conn // the socket the engine uses
	ownConn bool     // v6v4: opened here, closed by Close
	eng     *engine
	closing atomic.Bool
}

func newUserspace(ctx context.Context, cfg Config) (_ Tunnel, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("tunnel config: %w", err)
	}
	switch cfg.Type {
	case V6UDPV4:
		if err := checkUDPConn(cfg.Conn); err != nil {
			return nil, err
		}
	case V6V4:
	default:
		return nil, fmt.Errorf("userspace %v: %w", cfg.Type, ErrUnsupported)
	}

	u := &userspace{}
	u.init(cfg, cfg.Log.With("if", cfg.IfName, "mode", cfg.Type.String()))
	defer u.undo.rollbackOn(&err)

	u.dev, err = setUpTUN(tunSetup{Netlink: cfg.Netlink, NetNS: cfg.NetNS, IfName: cfg.IfName,
		Offload: !cfg.DisableOffload, Plan: planFor(cfg)}, &u.undo, u.log)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel set-up: %w", err)
	}

	switch cfg.Type {
	case V6UDPV4:
		u.conn = cfg.Conn
	case V6V4:
		c, err := dialProto41(cfg.NetNS, cfg.LocalEndpoint, cfg.RemoteEndpoint)
		if err != nil {
			return nil, err
		}
		u.conn, u.ownConn = c, true
		u.undo.push("protocol-41 socket", c.Close)
	}
	setSocketBuffers(u.conn, socketBuffer, u.log)
	u.eng, err = newEngine(u.dev, u.conn, engineConfig{batch: cfg.BatchSize, mtu: cfg.MTU, offload: !cfg.DisableOffload})
	if err != nil {
		return nil, fmt.Errorf("tunnel socket: %w", err)
	}
	u.eng.cnt, u.eng.log, u.eng.closing = &u.cnt, u.log, &u.closing
	u.eng.control = u.onControl
	u.eng.own, u.eng.ownSet = cfg.Local.Addr().As16(), true
	u.eng.fail = func(err error) { u.sink.emit(Event{Kind: IOError, Err: err}) }
	u.eng.unreach = u.suspect

	if err := u.setUpKeepalive(cfg, func() (PingConn, error) {
		return NewPingConn(cfg.NetNS, u.dev.name, cfg.Local.Addr(), cfg.Keepalive.Target)
	}); err != nil {
		return nil, err
	}

	// Everything is in place: start moving packets.
	u.wg.Add(2)
	go func() { defer u.wg.Done(); u.eng.devToNet() }()
	go func() { defer u.wg.Done(); u.eng.netToDev() }()
	u.startKeepalive()
	u.log.Info("tunnel up", "client", cfg.Local, "server", cfg.Remote,
		"local", connLocalAddr(u.conn), "mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval,
		"offload", u.dev.vnet, "udp_gso", u.eng.conn.gso(), "udp_gro", u.eng.conn.gro)
	return u, nil
}

// checkUDPConn makes sure c can carry v6udpv4: a connected UDP socket.
func checkUDPConn(c net.Conn) error {
	if c == nil {
		return errors.New("v6udpv4 needs the TSP session's UDP socket (Config.Conn)")
	}
	if _, ok := c.(syscall.Conn); !ok {
		return fmt.Errorf("v6udpv4: %T gives no access to its socket", c)
	}
	if _, ok := c.RemoteAddr().(*net.UDPAddr); !ok {
		return fmt.Errorf("v6udpv4: %T is not a connected UDP socket", c)
	}
	return nil
}

// setSocketBuffers enlarges the socket buffers, past the sysctl limits when
// privileged; failure only costs throughput.
func setSocketBuffers(c any, size int, log *logx.Logger) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], size) == nil {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], size); err != nil {
				log.Debug("socket buffer not enlarged", "err", err)
			}
		}
	})
}

// onControl handles a TSP control datagram arriving on the tunnel socket.
func (u *userspace) onControl(_ netip.AddrPort, msg []byte) {
	code, text := controlMessage(msg)
	if !isBrokerError(code) {
		// An echoed keepalive or a late reply to the negotiation.
		u.log.Debug("control datagram ignored", "text", text)
		return
	}
	u.log.Warn("broker reports an error on the tunnel socket", "text", text)
	u.sink.emit(Event{Kind: BrokerControl, Code: code, Text: text})
}

func (u *userspace) Stats() Stats { return u.keepaliveStats(u.cnt.snapshot()) }

// Close stops the pumps and the prober and removes routes, address and
// device. The caller's Conn stays open, without deadlines.
func (u *userspace) Close() error {
	u.closeOnce.Do(func() {
		u.closing.Store(true)
		u.cancel()
		if !u.ownConn {
			// Wake the pumps without closing a socket we do not own.
			_ = u.conn.SetDeadline(time.Unix(1, 0))
		}
		u.closeErr = u.undo.run()
		u.wg.Wait()
		if !u.ownConn {
			_ = u.conn.SetDeadline(time.Time{})
		}
		close(u.events)
		u.log.Info("tunnel down")
	})
	return u.closeErr
}
