package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// sample has every shape the writer produces; encoding/json marshals it as
// the reference.
type sample struct {
	S      string         `json:"s"`
	F      float64        `json:"f"`
	I      int64          `json:"i"`
	U      uint64         `json:"u"`
	B      bool           `json:"b"`
	N      *int           `json:"n"`
	Empty  []int          `json:"empty"`
	Obj    struct{}       `json:"obj"`
	List   []string       `json:"list"`
	Map    map[string]int `json:"map"`
	Grid   [][]int        `json:"grid"`
	Nested *sample        `json:"nested,omitempty"`
}

func writeSample(w *Writer, s *sample) {
	w.BeginObject()
	w.Key("s")
	w.String(s.S)
	w.Key("f")
	w.Float(s.F)
	w.Key("i")
	w.Int(s.I)
	w.Key("u")
	w.Uint(s.U)
	w.Key("b")
	w.Bool(s.B)
	w.Key("n")
	w.Null()
	w.Key("empty")
	if s.Empty == nil {
		w.Null()
	} else {
		w.BeginArray()
		w.EndArray()
	}
	w.Key("obj")
	w.BeginObject()
	w.EndObject()
	w.Key("list")
	if s.List == nil {
		w.Null()
	} else {
		w.BeginArray()
		for _, e := range s.List {
			w.String(e)
		}
		w.EndArray()
	}
	w.Key("map")
	w.BeginObject()
	for k, v := range s.Map { // one key at most: map order is random
		w.Key(k)
		w.Int(int64(v))
	}
	w.EndObject()
	w.Key("grid")
	if s.Grid == nil {
		w.Null()
	} else {
		w.BeginArray()
		for _, row := range s.Grid {
			if row == nil {
				w.Null()
				continue
			}
			w.BeginArray()
			for _, v := range row {
				w.Int(int64(v))
			}
			w.EndArray()
		}
		w.EndArray()
	}
	if s.Nested != nil {
		w.Key("nested")
		writeSample(w, s.Nested)
	}
	w.EndObject()
}

// compareSample checks the writer against encoding/json, compact and
// indented; it reports false when encoding/json refuses s.
func compareSample(t *testing.T, s *sample) bool {
	t.Helper()
	for _, indent := range []string{"", "  ", "\t"} {
		var want []byte
		var err error
		if indent == "" {
			want, err = json.Marshal(s)
		} else {
			want, err = json.MarshalIndent(s, "", indent)
		}
		w := NewWriter(indent)
		writeSample(w, s)
		got, gerr := w.Bytes()
		if (err == nil) != (gerr == nil) {
			t.Fatalf("indent %q: encoding/json error %v, jsonw error %v", indent, err, gerr)
		}
		if err != nil {
			return false
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("indent %q:\n got %q\nwant %q", indent, got, want)
		}
	}
	return true
}

var oddStrings = []string{
	"", "plain", `quote " and backslash \ and slash /`, "\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f",
	"<script>&amp;</script>", "line\u2028para\u2029end", "héllo wörld ✓ 😀", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate bytes",
	"\ufffd already", "tab\tnew\nline",
}

var oddFloats = []float64{0, math.Copysign(0, -1), 1, -1, 1.25, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 123456789.125,
	-2.5e-300, math.SmallestNonzeroFloat64, math.MaxFloat64, 1e100, 3.0000000000000004}

func TestWriterMatchesEncodingJSON(t *testing.T) {
	for _, s := range oddStrings {
		for _, f := range oddFloats {
			smp := &sample{S: s, F: f, I: math.MinInt64, U: math.MaxUint64, B: true, Empty: []int{}, List: []string{s, "x"},
				Map: map[string]int{s: 7}, Grid: [][]int{{1, -2}, {}, nil, {3}},
				Nested: &sample{S: s + s, F: -f, I: 42, List: []string{}, Map: map[string]int{}}}
			if !compareSample(t, smp) {
				t.Fatalf("encoding/json refused %+v", smp)
			}
		}
	}
}

func TestWriterRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if compareSample(t, &sample{F: f}) { // compareSample checks both refuse
			t.Errorf("%v accepted", f)
		}
	}
}

func TestWriterMisuse(t *testing.T) {
	for name, build := range map[string]func(w *Writer){
		"nothing":            func(w *Writer) {},
		"value without key":  func(w *Writer) { w.BeginObject(); w.Int(1); w.EndObject() },
		"key in array":       func(w *Writer) { w.BeginArray(); w.Key("a"); w.EndArray() },
		"key twice":          func(w *Writer) { w.BeginObject(); w.Key("a"); w.Key("b"); w.Int(1); w.EndObject() },
		"key without value":  func(w *Writer) { w.BeginObject(); w.Key("a"); w.EndObject() },
		"unclosed":           func(w *Writer) { w.BeginArray() },
		"wrong end":          func(w *Writer) { w.BeginArray(); w.EndObject() },
		"end at top":         func(w *Writer) { w.Int(1); w.EndArray() },
		"two values":         func(w *Writer) { w.Int(1); w.Int(2) },
		"key at top":         func(w *Writer) { w.Key("a") },
		"NaN in array":       func(w *Writer) { w.BeginArray(); w.Float(math.NaN()); w.EndArray() },
		"error then balance": func(w *Writer) { w.BeginObject(); w.String("x"); w.Key("a"); w.Int(1); w.EndObject() },
	} {
		w := NewWriter("  ")
		build(w)
		if b, err := w.Bytes(); err == nil {
			t.Errorf("%s: no error, wrote %q", name, b)
		}
	}
}

// FuzzJSONWrite compares the writer with encoding/json on random strings
// (as values and as keys), numbers and booleans.
func FuzzJSONWrite(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(s, oddFloats[i%len(oddFloats)], int64(i)-5, uint64(i)<<60, i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, s string, fl float64, i int64, u uint64, b bool) {
		smp := &sample{S: s, F: fl, I: i, U: u, B: b, List: []string{s}, Map: map[string]int{s: int(i % 1000)},
			Nested: &sample{S: strings.ToUpper(s), F: fl / 3, U: u / 7, Map: map[string]int{}}}
		compareSample(t, smp)
	})
}
