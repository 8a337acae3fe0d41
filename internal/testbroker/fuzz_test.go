package testbroker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

// fakePacketConn records what the server sends; the fuzz target feeds
// datagrams straight into handleDatagram, with no sockets.
type fakePacketConn struct{ out [][]byte }

func (f *fakePacketConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (f *fakePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	f.out = append(f.out, bytes.Clone(b))
	return len(b), nil
}
func (f *fakePacketConn) Close() error { return nil }
func (f *fakePacketConn) LocalAddr() net.Addr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:3653"))
}
func (f *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (f *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSep separates datagrams in a fuzz input. Each datagram's first byte
// says how to send the rest: 0 behind the next gogoc sequence header, 1
// behind the previous header (a retransmission), 2 as is, 3 like 0 but from
// another source port.
const fuzzSep = "\n~~\n"

func fuzzSeeds() [][]byte {
	join := func(msgs ...string) []byte { return []byte(strings.Join(msgs, fuzzSep)) }
	ping := echoRequest(netip.MustParseAddr("2001:db8:ab:0:ffff:7f00:1:9c40"), netip.MustParseAddr("2001:db8:ab::1"), 9, 1, []byte("x"))
	return [][]byte{
		join("\x00"+msgVersion, "\x00"+msgAnonymous, "\x00"+createMsg("v6anyv4", "192.0.2.10", 30, -1),
			"\x00"+msgAccept, "\x02"+string(ping), "\x00keepalive"),
		join("\x00"+msgVersion, "\x00"+msgDigest, "\x00"+b64(vecClientLine)+"\r\n", "\x00",
			"\x00"+createMsg("v6v4", "127.0.0.1", 30, 56), "\x01"+createMsg("v6v4", "127.0.0.1", 30, 56), "\x00"+msgAccept),
		join("\x00"+msgVersion, "\x01"+msgVersion, "\x00"+msgPlain, "\x00"+plainCreds("alice", "secret"),
			"\x00"+createMsg("v6udpv4", "127.0.0.1", -1, -1), "\x00"+frame(`<tunnel action="reject"></tunnel>`+"\r\n"), "\x00"+msgVersion),
		join("\x00ECHO REQUEST", "\x03"+msgVersion, "\x02\x60\x00\x00\x00", "\x00"+msgVersion, "\x02"+string(ping)),
		join("\x00VERSION=1.0.1\r\n", "\x00"+msgVersion, "\x00AUTHENTICATE PLAIN\r\n\x00", "\x00\x00\x00\x00\r\n"),
		join("\x00"+msgVersion, "\x00"+msgAnonymous, "\x00"+createMsg("v4v6", "2001:db8::2", 30, 64), "\x00Content-length: 99999\r\n<"),
	}
}

func FuzzServerDatagram(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRun(t, data) })
}

// fuzzRun plays one fuzz input into a fresh server and checks that every
// reply echoes the header of the datagram it answers.
func fuzzRun(t testing.TB, data []byte) Stats {
	s, err := New(Config{
		Users:   map[string]string{"alice": "secret"},
		Tunnels: []string{"V6V4", "V6UDPV4", "V4V6"},
		Faults:  Faults{FixedNonce: "1A2B3C4D", Chunk: 300, DropReply: []int{3}},
		Limits:  Limits{MaxPerSource: 4},
		Log:     logx.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	pc := &fakePacketConn{}
	l := &udpListener{conn: pc, local: netip.MustParseAddr("127.0.0.1"), sessions: map[netip.AddrPort]*Session{}}
	s.udp[l] = struct{}{}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	seq := uint32(0xF00000F0)
	hdr := make([]byte, 8)
	for i, rec := range bytes.Split(data, []byte(fuzzSep)) {
		if len(rec) == 0 || i > 64 {
			continue
		}
		var dgram []byte
		switch rec[0] % 4 {
		case 0, 3:
			if rec[0]%4 == 3 {
				from = netip.AddrPortFrom(from.Addr(), from.Port()+1)
			}
			binary.BigEndian.PutUint32(hdr, seq)
			binary.BigEndian.PutUint32(hdr[4:], uint32(i))
			seq++
			dgram = append(bytes.Clone(hdr), rec[1:]...)
		case 1:
			dgram = append(bytes.Clone(hdr), rec[1:]...)
		case 2:
			dgram = rec[1:]
		}
		pc.out = nil
		s.handleDatagram(l, from, dgram)
		for _, out := range pc.out {
			switch {
			case len(out) > rudpHeaderLen+2*maxMessage:
				t.Fatalf("%d-byte reply", len(out))
			case len(dgram) >= 4 && len(out) >= 4 && bytes.Equal(out[:4], dgram[:4]):
			case len(out) >= 8 && bytes.Equal(out[:4], []byte{0xFF, 0xFF, 0xFF, 0xFF}):
			case len(out) >= 40 && out[0]>>4 == 6 && dgram[0]>>4 == 6: // echo responder
			default:
				t.Fatalf("reply % x to datagram % x does not echo its header", out, dgram)
			}
		}
	}
	_ = s.Sessions()
	st := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// The seeds must reach deep into the state machine, or the fuzzer starts
// from the surface.
func TestFuzzSeedsEstablish(t *testing.T) {
	for i, seed := range fuzzSeeds()[:2] {
		if st := fuzzRun(t, seed); st.Established != 1 || st.Retransmits != uint64(i) {
			t.Errorf("seed %d: %+v", i, st)
		}
	}
}
