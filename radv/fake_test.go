package radv

import (
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
)

// fakeConn is an in-memory Conn. Written RAs go through the real wire
// format (marshalRA, then ndp's parser) so that what tests see is what a
// host would read; solicitations are marshalled by ndp and read by
// parseRS, as ICMPConn reads them.
type fakeConn struct {
	in  chan received
	out chan sent

	once     sync.Once
	unblock  chan struct{}
	mu       sync.Mutex
	writeErr error
	readErr  error
}

func (f *fakeConn) setWriteErr(err error) {
	f.mu.Lock()
	f.writeErr = err
	f.mu.Unlock()
}

type received struct {
	m   *RouterSolicitation
	hop int
	src netip.Addr
}

type sent struct {
	ra  *ndp.RouterAdvertisement
	dst netip.Addr
	at  time.Time
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan received, 64), out: make(chan sent, 256), unblock: make(chan struct{})}
}

func (f *fakeConn) ReadFrom() (*RouterSolicitation, int, netip.Addr, error) {
	if f.readErr != nil {
		return nil, -1, netip.Addr{}, f.readErr
	}
	select {
	case r := <-f.in:
		return r.m, r.hop, r.src, nil
	case <-f.unblock:
		return nil, -1, netip.Addr{}, os.ErrDeadlineExceeded
	}
}

func (f *fakeConn) WriteTo(ra *RouterAdvertisement, dst netip.Addr) error {
	f.mu.Lock()
	werr := f.writeErr
	f.mu.Unlock()
	if werr != nil {
		return werr
	}
	b, err := marshalRA(ra)
	if err != nil {
		return err
	}
	back, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	f.out <- sent{ra: back.(*ndp.RouterAdvertisement), dst: dst, at: time.Now()}
	return nil
}

func (f *fakeConn) SetReadDeadline(time.Time) error {
	f.once.Do(func() { close(f.unblock) })
	return nil
}

// solicit queues a Router Solicitation with options opts, as ndp
// marshals it and parseRS reads it.
func (f *fakeConn) solicit(src string, hop int, opts ...ndp.Option) {
	b, err := ndp.MarshalMessage(&ndp.RouterSolicitation{Options: opts})
	if err != nil {
		panic(err)
	}
	rs, err := parseRS(b)
	if err != nil {
		panic(err)
	}
	f.in <- received{m: rs, hop: hop, src: netip.MustParseAddr(src)}
}
