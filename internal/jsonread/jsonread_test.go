package jsonread

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// toAny converts a parsed value to what encoding/json's decoder with
// UseNumber gives for the same document: objects as maps (a later
// duplicate wins), numbers as json.Number.
func toAny(v Value) any {
	switch v.Kind {
	case Bool:
		return v.Bool
	case Number:
		return json.Number(v.Text)
	case String:
		return v.Text
	case Array:
		a := make([]any, len(v.Elems))
		for i, e := range v.Elems {
			a[i] = toAny(e)
		}
		return a
	case Object:
		m := make(map[string]any, len(v.Members))
		for _, e := range v.Members {
			m[e.Name] = toAny(e.Value)
		}
		return m
	}
	return nil
}

// referenceParse decodes doc with encoding/json as the reference.
func referenceParse(doc []byte) (any, error) {
	if !json.Valid(doc) { // Decoder alone would accept trailing data
		return nil, errors.New("invalid")
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

var readSeeds = []string{
	`null`, `true`, ` false `, `0`, `-0`, `-12.5e+3`, `1E400`, `"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`,
	`"\ud83dx"`, `"\ud83d\u0041"`, "\"\xff\xfe\"", "\"\xed\xa0\x80\"", `[]`, `{}`, `[1,[2,[3]],{"a":{"b":[]}}]`,
	`{"a":1,"a":2,"A":3}`, `{"state":"up","keepalive":{"rtt_ms":1.25}}`, ` [ 1 , 2 ] `,
	// invalid
	``, ` `, `[`, `]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `tru`, `nulll`,
	`"abc`, `"\x"`, `"\u12"`, "\"a\x01b\"", `{a:1}`, `'a'`, `[1] x`, `{"a":1}}`, `NaN`, `Infinity`, `"\`,
}

// FuzzJSONRead compares Parse with encoding/json: the same documents are
// accepted, and accepted ones give the same tree.
func FuzzJSONRead(f *testing.F) {
	for _, s := range readSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := Parse(doc)
		want, rerr := referenceParse(doc)
		if errors.Is(err, ErrTooDeep) {
			if bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) <= MaxDepth {
				t.Fatalf("%q: depth error with at most %d brackets", doc, MaxDepth)
			}
			return
		}
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%q: jsonread error %v, encoding/json error %v", doc, err, rerr)
		}
		if err == nil && !reflect.DeepEqual(toAny(got), want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", doc, toAny(got), want)
		}
	})
}

func TestParseSeeds(t *testing.T) {
	for _, s := range readSeeds {
		got, err := Parse([]byte(s))
		want, rerr := referenceParse([]byte(s))
		if (err == nil) != (rerr == nil) {
			t.Errorf("%q: jsonread error %v, encoding/json error %v", s, err, rerr)
			continue
		}
		if err == nil && !reflect.DeepEqual(toAny(got), want) {
			t.Errorf("%q:\n got %#v\nwant %#v", s, toAny(got), want)
		}
		var se *SyntaxError
		if err != nil && (!errors.As(err, &se) || se.Offset < 0 || se.Offset > len(s)) {
			t.Errorf("%q: error %v is not a SyntaxError with an offset inside the input", s, err)
		}
	}
}

func TestParseKeepsOrderAndDuplicates(t *testing.T) {
	v, err := Parse([]byte(`{"b":1,"a":[true,null],"b":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range v.Members {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "b,a,b" || v.Members[1].Value.Kind != Array || v.Members[1].Value.Elems[1].Kind != Null {
		t.Errorf("members %v", v.Members)
	}
}

func TestParseErrorsSayWhere(t *testing.T) {
	for _, c := range []struct {
		doc    string
		offset int
		words  string
	}{
		{`{"a":1,}`, 7, "want an object key, found '}'"},
		{`[1 2]`, 3, "want ',' or ']' in an array, found '2'"},
		{`{"a" 1}`, 5, "want ':'"},
		{`"ab`, 3, "end the string, found end of input"},
		{"\"a\tb\"", 2, `control character in a string, found '\t'`},
		{`[1] x`, 4, "after the top-level value, found 'x'"},
		{`{"a":tru}`, 5, `want true`},
		{``, 0, "want a value, found end of input"},
		{"[\xff]", 1, "found byte 0xff"},
		{`"\q"`, 2, "valid escape"},
		{`"\u12x4"`, 3, "four hex digits"},
		{`-a`, 1, "want a digit, found 'a'"},
		{`1.e5`, 2, "after the decimal point"},
	} {
		_, err := Parse([]byte(c.doc))
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != c.offset || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%q: error %v, want offset %d and %q", c.doc, err, c.offset, c.words)
		}
	}
}

// TestParseDepthBound: deep nesting is refused, not followed into a stack
// overflow; MaxDepth levels themselves are fine.
func TestParseDepthBound(t *testing.T) {
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
	for _, open := range []string{"[", `{"a":`} {
		deep := strings.Repeat(open, 1_000_000)
		if _, err := Parse([]byte(deep)); !errors.Is(err, ErrTooDeep) {
			t.Errorf("a million levels of %q: %v", open, err)
		}
	}
}

// target is decoded by encoding/json as the reference for DecodeObject.
type target struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	Big   uint64  `json:"big"`
	Ratio float64 `json:"ratio"`
}

func decodeTarget(doc string) (target, error) {
	var x target
	v, err := Parse([]byte(doc))
	if err != nil {
		return x, err
	}
	members, err := v.Object()
	for i := 0; err == nil && i < len(members); i++ {
		m := &members[i].Value
		switch Match(members[i].Name, "name", "count", "big", "ratio") {
		case 0:
			err = m.StoreString(&x.Name)
		case 1:
			err = m.StoreInt(&x.Count)
		case 2:
			err = m.StoreUint64(&x.Big)
		case 3:
			err = m.StoreFloat64(&x.Ratio)
		}
	}
	return x, err
}

func TestStoreMatchesEncodingJSON(t *testing.T) {
	tooBig := strconv.FormatUint(math.MaxUint64, 10) + "0"
	for _, doc := range []string{
		`{"name":"n","count":-3,"big":18446744073709551615,"ratio":1.5e-3}`, `null`, `{}`, `{"NAME":"upper","Count":2}`,
		`{"ſtate":1,"naMe":"fold","name":"exact"}`, `{"name":"a","name":"b"}`, `{"name":null,"count":null}`,
		`{"unknown":{"deep":[1,2]},"name":"x"}`, `{"count":"1"}`, `{"name":1}`, `{"count":1.0}`, `{"count":1e2}`,
		`{"count":-0}`, `{"big":-1}`, `{"big":-0}`, `{"big":` + tooBig + `}`, `{"count":9223372036854775808}`,
		`{"count":2147483648}`, `{"name":"a","name":null,"count":5,"count":null}`, `{"ratio":1.5,"ratio":null,"big":1,"big":null}`, `{"ratio":1e400}`, `{"ratio":1e-400}`, `{"ratio":true}`, `[]`, `"x"`, `{"name":"\ud800"}`,
	} {
		got, err := decodeTarget(doc)
		var want target
		rerr := json.Unmarshal([]byte(doc), &want)
		if (err == nil) != (rerr == nil) {
			t.Errorf("%s: jsonread error %v, encoding/json error %v", doc, err, rerr)
			continue
		}
		if err == nil && got != want {
			t.Errorf("%s: got %+v, want %+v", doc, got, want)
		}
	}
}

func TestStoreErrorsSayWhatWasFound(t *testing.T) {
	for doc, words := range map[string]string{
		`{"count":"seven"}`: "want a number, found string", `{"name":[]}`: "want a string, found array",
		`{"count":1.5}`: "want a whole number in range, found 1.5", `{"ratio":2e308}`: "want a number in range, found 2e308",
		`true`: "want an object, found bool",
	} {
		if _, err := decodeTarget(doc); err == nil || err.Error() != words {
			t.Errorf("%s: error %v, want %q", doc, err, words)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		name string
		want int
	}{{"b", 1}, {"B", 1}, {"ab", -1}, {"", -1}, {"\u212a", 2}, {"K", 3}} {
		if got := Match(c.name, "a", "b", "k", "K"); got != c.want {
			t.Errorf("Match(%q) = %d, want %d", c.name, got, c.want)
		}
	}
}
