package radv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

// Router Solicitations captured on a veth link (tcpdump), checksums
// included: what the Linux kernel sends when an interface comes up (with
// its source link-layer address) and what rdisc6 sends (none).
var (
	rsKernel = []byte("\x85\x00\x29\xf3\x00\x00\x00\x00\x01\x01\x7e\xda\xea\xf6\x40\xcc")
	rsRdisc6 = []byte("\x85\x00\xd5\x99\x00\x00\x00\x00")
)

// option is an NDP option as it was on the wire (RFC 4861 §4.6): its type
// and the bytes after the type and length bytes.
type option struct {
	Type  uint8
	Value []byte
}

// rsOptions lists the options of a solicitation parseRS accepted, in the
// order they came: what parseRS walked, for comparing with ndp.
func rsOptions(b []byte) []option {
	var out []option
	for o := b[rsHeaderLen:]; len(o) > 0; o = o[int(o[1])*8:] {
		out = append(out, option{Type: o[0], Value: o[2 : int(o[1])*8]})
	}
	return out
}

// firstSLLA is the first source link-layer address among opts, as ndp
// decoded them.
func firstSLLA(opts []ndp.Option) net.HardwareAddr {
	for _, o := range opts {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Source {
			return l.Addr
		}
	}
	return nil
}

// asNDP is what ndp's parser makes of the options parseRS walked:
// link-layer addresses decoded, everything else raw.
func asNDP(opts []option) []ndp.Option {
	var out []ndp.Option
	for _, o := range opts {
		switch o.Type {
		case optSourceLLA, optTargetLLA:
			out = append(out, &ndp.LinkLayerAddress{Direction: ndp.Direction(o.Type), Addr: net.HardwareAddr(o.Value)})
		default:
			out = append(out, &ndp.RawOption{Type: o.Type, Length: uint8((len(o.Value) + 2) / 8), Value: o.Value})
		}
	}
	return out
}

func TestParseRS(t *testing.T) {
	slla := func(mac string) ndp.Option {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			t.Fatal(err)
		}
		return &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: hw}
	}
	good := []struct {
		name string
		b    []byte
		want []ndp.Option
	}{
		{"kernel, with SLLA", rsKernel, []ndp.Option{slla("7e:da:ea:f6:40:cc")}},
		{"rdisc6, no options", rsRdisc6, nil},
		{"unknown option kept raw, then SLLA", []byte("\x85\x00\x00\x00\x00\x00\x00\x00\xfd\x01\x01\x02\x03\x04\x05\x06\x01\x01\x02\x00\x00\x00\x00\x01"),
			[]ndp.Option{&ndp.RawOption{Type: 253, Length: 1, Value: []byte{1, 2, 3, 4, 5, 6}}, slla("02:00:00:00:00:01")}},
		{"MTU option, not meant for an RS, kept raw", []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x05\x01\x00\x00\x00\x00\x05\xdc"),
			[]ndp.Option{&ndp.RawOption{Type: 5, Length: 1, Value: []byte{0, 0, 0, 0, 5, 0xdc}}}},
		// ndp refuses this one (a uint8 overflow in its length check);
		// RFC 4861 allows options of up to 255 units.
		{"unknown option of 32 units (256 bytes)", append([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\xfd\x20"), make([]byte, 254)...),
			[]ndp.Option{&ndp.RawOption{Type: 253, Length: 32, Value: make([]byte, 254)}}},
		{"target LLA decoded as ndp does", []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x02\x01\x02\x00\x00\x00\x00\x09"),
			[]ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: net.HardwareAddr{2, 0, 0, 0, 0, 9}}}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := parseRS(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got := asNDP(rsOptions(tt.b)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("options %#v, want %#v", got, tt.want)
			}
			if got, want := rs.SourceLinkAddr(), firstSLLA(tt.want); !bytes.Equal(got, want) {
				t.Fatalf("source link-layer address %v, want %v", got, want)
			}
		})
	}
	// The decoded address must not alias the read buffer, which the
	// next read overwrites.
	b := bytes.Clone(rsKernel)
	rs, err := parseRS(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if got := rs.SourceLinkAddr().String(); got != "7e:da:ea:f6:40:cc" {
		t.Fatalf("address changed with the buffer: %s", got)
	}

	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"7 bytes", rsRdisc6[:7]},
		{"RA", []byte("\x86\x00\x00\x00\x40\x00\x07\x08\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"echo request", []byte("\x80\x00\x00\x00\x12\x34\x00\x01")},
		{"code 1", []byte("\x85\x01\x00\x00\x00\x00\x00\x00")},
		{"zero-length option", []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x00")},
		{"zero-length option after a good one", append(bytes.Clone(rsKernel), 0xfd, 0, 0, 0, 0, 0, 0, 0)},
		{"one byte of option", append(bytes.Clone(rsRdisc6), 1)},
		{"option longer than the message", rsKernel[:15]},
		{"SLLA of length 2", []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x02\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x00\x00")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := parseRS(tt.b)
			if !errors.Is(err, ErrMalformed) || rs != nil {
				t.Fatalf("parseRS(% x) = %+v, %v; want an ErrMalformed", tt.b, rs, err)
			}
		})
	}
}

// ndpReference is what ndp.ParseMessage makes of the solicitation b
// (type 133, code 0), with two of its rules parseRS deliberately lacks
// taken out:
//   - ndp checks the contents of options it knows even where they do not
//     belong, as a PIO in an RS; parseRS ignores them (RFC 4861 §4.1). So
//     every option but the link-layer addresses is retyped 253
//     (experimental, RFC 4727), which ndp keeps raw.
//   - ndp refuses any option of 32 units (256 bytes) or more: its length
//     check multiplies in a uint8. RFC 4861 allows up to 255 units, so
//     such options are cut out before ndp sees them and put back, raw,
//     in its result.
//
// The walk stops at the first option that is not whole, leaving the rest
// for ndp to refuse.
func ndpReference(b []byte) ([]ndp.Option, error) {
	b = bytes.Clone(b)
	type cut struct {
		at int
		o  *ndp.RawOption
	}
	var cuts []cut
	for off, i := rsHeaderLen, 0; off+2 <= len(b); i++ {
		n := int(b[off+1]) * 8
		if n == 0 || off+n > len(b) {
			break
		}
		switch {
		case b[off] == optSourceLLA || b[off] == optTargetLLA:
			off += n
		case b[off+1] >= 32:
			cuts = append(cuts, cut{i, &ndp.RawOption{Type: 253, Length: b[off+1], Value: bytes.Clone(b[off+2 : off+n])}})
			b = append(b[:off], b[off+n:]...)
		default:
			b[off] = 253
			off += n
		}
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, err
	}
	rs, ok := m.(*ndp.RouterSolicitation)
	if !ok {
		return nil, fmt.Errorf("ndp parsed an RS as %T", m)
	}
	opts := rs.Options
	for _, c := range cuts {
		opts = slices.Insert(opts, c.at, ndp.Option(c.o))
	}
	return opts, nil
}

// FuzzParseRS checks parseRS against ndp.ParseMessage, which it replaced
// on the read path. With the rules ndp lacks applied first (type 133, code
// 0) and ndp's content checks of options a solicitation does not use taken
// out (ndpReference), both must accept the same messages and decode the
// same options. Anything ndp accepts as an RS with code 0, parseRS accepts.
func FuzzParseRS(f *testing.F) {
	f.Add(rsKernel)
	f.Add(rsRdisc6)
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x00"))
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x02\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x03\x04\x40\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x1f\x02\x00\x00\x00\x00\x00\x00\x03lan\x07example\x00"))
	f.Add(append([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\xfd\x20"), make([]byte, 254)...))
	f.Add([]byte("\x85\x01\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x86\x00\x00\x00\x40\x00\x07\x08\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x87\x00\x00\x00\x00\x00\x00\x00\xfe\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte("\x80\x00\x00\x00\x12\x34\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		got, err := parseRS(b)
		if !bytes.Equal(b, in) {
			t.Fatal("parseRS changed its input")
		}
		if (got == nil) == (err == nil) {
			t.Fatalf("parseRS = %v, %v: want exactly one of them", got, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		isRS := len(b) >= rsHeaderLen && b[0] == 133 && b[1] == 0
		if orig, oerr := ndp.ParseMessage(b); oerr == nil && isRS && err != nil {
			t.Fatalf("ndp accepts %#v, parseRS refuses: %v", orig, err)
		}
		if !isRS {
			if err == nil {
				t.Fatalf("accepted type %d code %d", b[0], b[1])
			}
			return
		}
		want, rerr := ndpReference(b)
		if (rerr == nil) != (err == nil) {
			t.Fatalf("% x: parseRS error %v, ndp reference error %v", b, err, rerr)
		}
		if err != nil {
			return
		}
		if s, w := got.SourceLinkAddr(), firstSLLA(want); !bytes.Equal(s, w) {
			t.Fatalf("% x: source link-layer address %v, ndp's first %v", b, s, w)
		}
		// ndpReference retyped every option but the link-layer addresses.
		opts := asNDP(rsOptions(b))
		for _, o := range opts {
			if r, ok := o.(*ndp.RawOption); ok {
				r.Type = 253
			}
		}
		if !reflect.DeepEqual(opts, want) {
			t.Fatalf("% x:\nparseRS %#v\nndp     %#v", b, opts, want)
		}
	})
}

// malformedConn reports its first n reads as malformed messages, then
// reads from the fake.
type malformedConn struct {
	*fakeConn
	n int
}

func (c *malformedConn) ReadFrom() (*RouterSolicitation, int, netip.Addr, error) {
	if c.n > 0 {
		c.n--
		_, err := parseRS([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x00"))
		return nil, 255, netip.MustParseAddr("fe80::9"), err
	}
	return c.fakeConn.ReadFrom()
}

// A malformed message costs a Dropped count, not the Server.
func TestServeSurvivesMalformed(t *testing.T) {
	s, err := New(Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeConn()
	c := &malformedConn{fakeConn: f, n: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, c) }()
	defer func() {
		cancel()
		<-done
	}()
	next(t, f, time.Second) // the first, unsolicited
	f.solicit("fe80::2", 255)
	if r := next(t, f, time.Second); r.dst != netip.MustParseAddr("fe80::2") {
		t.Fatalf("reply to %v", r.dst)
	}
	if st := s.Stats(); st.Dropped != 3 || st.Solicits != 1 {
		t.Fatalf("stats %+v, want 3 dropped and the solicitation answered", st)
	}
}

// BenchmarkParseRSManyOptions reads the costliest solicitation a LAN host
// can send in one Ethernet frame: the most 8-byte options that fit. Beside
// it, ndp.ParseMessage, which keeps every option, on the same message.
func BenchmarkParseRSManyOptions(b *testing.B) {
	m := make([]byte, rsHeaderLen, 1500)
	m[0] = icmpRouterSolicitation
	for len(m)+8 <= 1500-40 {
		m = append(m, 253, 1, 0, 0, 0, 0, 0, 0)
	}
	b.Run("parseRS", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(m)))
		for b.Loop() {
			if _, err := parseRS(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ndp", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(m)))
		for b.Loop() {
			if _, err := ndp.ParseMessage(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
