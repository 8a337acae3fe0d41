package tunnel

import (
	"encoding/binary"
	"math/bits"
)

// Internet checksum (RFC 1071) helpers for the offload paths, which must
// finish the checksums the kernel left to "hardware" and verify those of
// segments they merge.

// sum adds b to acc as big-endian 16-bit words in one's complement,
// eight bytes at a time; the result is folded only by fold.
func sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	acc, c = bits.Add64(acc, c, 0)
	acc += c
	var tail uint64
	switch {
	case len(b) >= 4:
		tail = uint64(binary.BigEndian.Uint32(b)) << 32
		b = b[4:]
		if len(b) >= 2 {
			tail |= uint64(binary.BigEndian.Uint16(b)) << 16
			b = b[2:]
		}
		if len(b) == 1 {
			tail |= uint64(b[0]) << 8
		}
	case len(b) >= 2:
		tail = uint64(binary.BigEndian.Uint16(b)) << 48
		if len(b) == 3 {
			tail |= uint64(b[2]) << 40
		}
	case len(b) == 1:
		tail = uint64(b[0]) << 56
	}
	acc, c = bits.Add64(acc, tail, 0)
	return acc + c
}

// fold reduces a sum to 16 bits.
func fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// pseudoSum is the IPv6 pseudo-header (RFC 8200 §8.1) for the packet whose
// IPv6 header is hdr, an upper-layer length and next header.
func pseudoSum(hdr []byte, length int, proto uint8) uint64 {
	acc := sum(hdr[8:40], 0) // source and destination
	return acc + uint64(length) + uint64(proto)
}
