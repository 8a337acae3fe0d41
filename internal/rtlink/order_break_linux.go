//go:build gogoc_break_byteorder

package rtlink

import "encoding/binary"

// oifAttr broken on purpose, only in the VM lane's VM_BREAK=byteorder
// build: the index written little-endian, as code only ever run on x86
// might. A little-endian kernel cannot tell; a big-endian one reads
// another interface or none, and the lane on mips must fail.
func oifAttr(index int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(index)) }
