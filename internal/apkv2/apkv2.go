// Package apkv2 reads and recompresses apk packages in the v2 format, the
// one nfpm writes and apk-tools 3 still installs: gzip streams laid end to
// end, an optional signature segment, the control segment (a tar without
// its end blocks, .PKGINFO first, then the scripts) and the data segment
// (a whole tar), with the data segment's SHA-256 as "datahash" in
// .PKGINFO. The package tests read every built .apk with it; scripts/packages.sh
// uses Recompress to shrink the data segment the way it does the ipks'.
package apkv2

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Segments returns the gzip streams of an apk, compressed, in order.
func Segments(apk []byte) ([][]byte, error) {
	var segs [][]byte
	r := bytes.NewReader(apk)
	for r.Len() > 0 {
		start := len(apk) - r.Len()
		// bytes.Reader is an io.ByteReader, so gzip reads no further than
		// the end of the stream and r stops at the next one.
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("segment %d at byte %d: %w", len(segs), start, err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			return nil, fmt.Errorf("segment %d at byte %d: %w", len(segs), start, err)
		}
		segs = append(segs, apk[start:len(apk)-r.Len()])
	}
	if len(segs) < 2 {
		return nil, fmt.Errorf("%d gzip segments, want control and data at least", len(segs))
	}
	return segs, nil
}

// File is one member of a segment's tar.
type File struct {
	Header *tar.Header
	Data   []byte
}

// Package is an apk read back: its .PKGINFO fields (each key's values in
// order: depend repeats), the control members by name, and the data
// members in order.
type Package struct {
	Info     map[string][]string
	Control  map[string]File
	Data     []File
	Signed   bool
	DataHash string // SHA-256 of the compressed data segment, hex
}

// Read parses an apk.
func Read(apk []byte) (*Package, error) {
	segs, err := Segments(apk)
	if err != nil {
		return nil, err
	}
	p := &Package{Control: map[string]File{}, Signed: len(segs) == 3}
	if len(segs) > 3 {
		return nil, fmt.Errorf("%d segments, want 2 or 3", len(segs))
	}
	control, data := segs[len(segs)-2], segs[len(segs)-1]
	sum := sha256.Sum256(data)
	p.DataHash = hex.EncodeToString(sum[:])

	cf, err := untar(control, true)
	if err != nil {
		return nil, fmt.Errorf("control segment: %w", err)
	}
	for _, f := range cf {
		if _, dup := p.Control[f.Header.Name]; dup {
			return nil, fmt.Errorf("control segment: %s twice", f.Header.Name)
		}
		p.Control[f.Header.Name] = f
	}
	if len(cf) == 0 || cf[0].Header.Name != ".PKGINFO" {
		return nil, errors.New("control segment does not start with .PKGINFO")
	}
	if p.Info, err = parseInfo(cf[0].Data); err != nil {
		return nil, fmt.Errorf(".PKGINFO: %w", err)
	}
	if p.Data, err = untar(data, false); err != nil {
		return nil, fmt.Errorf("data segment: %w", err)
	}
	return p, nil
}

// untar reads a gzipped tar; cut says the tar may end without its end
// blocks (apk's control segment).
func untar(seg []byte, cut bool) ([]File, error) {
	zr, err := gzip.NewReader(bytes.NewReader(seg))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	if !cut && (len(raw) < 1024 || !allZero(raw[len(raw)-1024:])) {
		return nil, errors.New("tar has no end blocks")
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var out []File
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) || (cut && errors.Is(err, io.ErrUnexpectedEOF)) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		out = append(out, File{h, b})
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseInfo reads .PKGINFO: "key = value" lines, # comments.
func parseInfo(b []byte) (map[string][]string, error) {
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, " = ")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key = value", n, l)
		}
		m[k] = append(m[k], v)
	}
	return m, sc.Err()
}

// Recompress returns the apk with its data segment's tar compressed by
// compress (which must write one gzip stream) and .PKGINFO's datahash
// set to the new segment's SHA-256. Everything else stays byte for byte;
// a signed package is refused, since its signature covers the control
// segment that changes.
func Recompress(apk []byte, compress func(tar []byte) ([]byte, error)) ([]byte, error) {
	segs, err := Segments(apk)
	if err != nil {
		return nil, err
	}
	if len(segs) != 2 {
		return nil, errors.New("signed package: recompressing would break the signature")
	}
	oldSum := sha256.Sum256(segs[1])
	zr, err := gzip.NewReader(bytes.NewReader(segs[1]))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	data, err := compress(raw)
	if err != nil {
		return nil, err
	}
	if check, err := gzip.NewReader(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("recompressed data: %w", err)
	} else if b, err := io.ReadAll(check); err != nil || !bytes.Equal(b, raw) {
		return nil, fmt.Errorf("recompressed data does not decompress to the same tar (%v)", err)
	}
	newSum := sha256.Sum256(data)

	zr, err = gzip.NewReader(bytes.NewReader(segs[0]))
	if err != nil {
		return nil, err
	}
	ctl, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	// The hash has a fixed length: the tar header (size, checksum) holds.
	old := []byte("datahash = " + hex.EncodeToString(oldSum[:]) + "\n")
	if bytes.Count(ctl, old) != 1 {
		return nil, errors.New(".PKGINFO has no datahash of the data segment")
	}
	ctl = bytes.Replace(ctl, old, []byte("datahash = "+hex.EncodeToString(newSum[:])+"\n"), 1)
	var c bytes.Buffer
	zw, err := gzip.NewWriterLevel(&c, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(ctl); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return append(c.Bytes(), data...), nil
}
