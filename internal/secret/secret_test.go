package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/secret"
)

func TestNeverPrinted(t *testing.T) {
	s := secret.String("hunter2")
	type wrap struct{ P secret.String }
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %#v %+v", s, s, s, s, s, wrap{s}),
		fmt.Sprintf("%#v", wrap{s}),
	}
	b, err := json.Marshal(wrap{s})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(b))
	var buf bytes.Buffer
	logx.Writer(&buf, logx.LevelInfo).Info("x", "pw", s)
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, fmt.Sprintf("%x", "hunter2")) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal lost the value")
	}
	if secret.String("").String() != "" {
		t.Fatal("empty secret should print empty")
	}
}
