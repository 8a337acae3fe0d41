package tunnel

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
)

// tunDevice is a TUN interface opened with IFF_TUN|IFF_NO_PI: every read and
// write is one raw IP packet, preceded by a virtio-net header when opened
// with offloads (vnet). The fd is non-blocking and owned by an *os.File so
// that reads park in the runtime poller and Close wakes them.
type tunDevice struct {
	name string
	file *os.File
	rc   syscall.RawConn
	vnet bool // packets carry a virtio-net header; TSO/USO enabled

	// Reader state, used only by the one goroutine calling read. The
	// callbacks are bound once so that a read allocates nothing.
	rarena []byte
	rmax   int
	rpkts  [][]byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	// Writer state, used only by the one goroutine calling write.
	wiovs   []unix.Iovec
	wparts  [][]byte
	wends   []int
	wcounts []int
	wi      int
	wfailed int
	werr    error
	writeFn func(fd uintptr) bool
}

// openTUN creates the TUN interface name in the calling thread's network
// namespace (see InNetNS). With offload it asks for virtio-net headers and
// TCP (and, where the kernel has it, UDP) segmentation offload; a kernel
// without them gives a plain device.
func openTUN(name string, offload bool) (*tunDevice, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) && unix.Geteuid() != 0 {
			// A file permission, not a capability: OpenWrt's procd
			// creates the node 0644 root, Debian's udev 0666.
			return nil, fmt.Errorf("create tun device %s: open /dev/net/tun: %w (uid %d needs read and write access to it)", name, err, unix.Geteuid())
		}
		return nil, fmt.Errorf("create tun device %s: open /dev/net/tun: %w", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun name %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tun device %s: %w", name, caps.Annotate(err, caps.NetAdmin))
	}
	if offload {
		// USO (Linux 6.2+) lets UDP GSO senders such as QUIC through
		// unsegmented too; older kernels refuse the flag. Without any
		// offload the virtio-net header stays, all zero: still correct.
		base := unix.TUN_F_CSUM | unix.TUN_F_TSO6
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base|unix.TUN_F_USO4|unix.TUN_F_USO6) != nil {
			_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base)
		}
	}
	t, err := newTunDevice(fd, ifr.Name())
	if err != nil {
		return nil, err
	}
	t.vnet = offload
	return t, nil
}

// newTunDevice wraps a non-blocking packet fd: a TUN, or in tests anything
// that keeps packet boundaries (a SOCK_DGRAM socketpair).
func newTunDevice(fd int, name string) (*tunDevice, error) {
	t := &tunDevice{name: name, file: os.NewFile(uintptr(fd), "/dev/net/tun")}
	var err error
	if t.rc, err = t.file.SyscallConn(); err != nil {
		t.file.Close()
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	t.readFn = t.doRead
	t.writeFn = t.doWrite
	return t, nil
}

// read waits for a packet, then takes whatever else is queued, so that the
// socket side can send them in one batch. Packets are laid out one after
// the other in arena, each read being given maxPkt bytes of room; it stops
// when pkts is full or the arena has no room left. pkts[:n] are the packets.
func (t *tunDevice) read(arena []byte, maxPkt int, pkts [][]byte) (int, error) {
	t.rarena, t.rmax, t.rpkts, t.rn, t.rerr = arena, maxPkt, pkts, 0, nil
	err := t.rc.Read(t.readFn)
	n := t.rn
	t.rarena, t.rpkts = nil, nil
	if n > 0 {
		return n, nil // a pending error shows up again on the next read
	}
	if err != nil {
		return 0, err
	}
	return 0, t.rerr
}

func (t *tunDevice) doRead(fd uintptr) bool {
	for t.rn < len(t.rpkts) && len(t.rarena) >= t.rmax {
		b := t.rarena[:t.rmax]
		n, err := unix.Read(int(fd), b)
		switch {
		case err == nil:
			if n > 0 {
				t.rpkts[t.rn] = b[:n:n]
				t.rn++
				t.rarena = t.rarena[n:]
			}
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return t.rn > 0 // false: park in the poller until readable
		default:
			t.rerr = err
			return true
		}
	}
	return true
}

// write performs the writes a coalescer laid out: write i is the iovecs
// parts[ends[i-1]:ends[i]] and carries counts[i] packets. Writes the kernel
// refuses (malformed packets) are counted, in packets, as failed.
func (t *tunDevice) write(parts [][]byte, ends, counts []int) (failed int, err error) {
	if len(ends) == 0 {
		return 0, nil
	}
	if cap(t.wiovs) < len(parts) {
		return 0, fmt.Errorf("tun %s: %d iovecs exceed the %d prepared", t.name, len(parts), cap(t.wiovs))
	}
	t.wiovs = t.wiovs[:len(parts)]
	for i, p := range parts {
		t.wiovs[i].Base = unsafe.SliceData(p)
		t.wiovs[i].SetLen(len(p))
	}
	t.wparts, t.wends, t.wcounts, t.wi, t.wfailed, t.werr = parts, ends, counts, 0, 0, nil
	err = t.rc.Write(t.writeFn)
	failed = t.wfailed
	for i := range t.wiovs {
		t.wiovs[i].Base = nil
	}
	t.wparts = nil
	if err != nil {
		return failed, err
	}
	return failed, t.werr
}

func (t *tunDevice) doWrite(fd uintptr) bool {
	for t.wi < len(t.wends) {
		start := 0
		if t.wi > 0 {
			start = t.wends[t.wi-1]
		}
		end := t.wends[t.wi]
		_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&t.wiovs[start])), uintptr(end-start))
		switch {
		case e == 0:
			t.wi++
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			return false
		case e == unix.EINVAL || e == unix.EMSGSIZE || e == unix.ENOMEM || e == unix.ENOBUFS:
			t.wfailed += t.wcounts[t.wi]
			t.wi++
		default:
			t.werr = e
			return true
		}
	}
	return true
}

// Close destroys the (non-persistent) device with everything on it.
func (t *tunDevice) Close() error {
	if err := t.file.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close tun %s: %w", t.name, err)
	}
	return nil
}
