package caps

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps/captest"
)

func TestCapNames(t *testing.T) {
	for c, want := range map[Cap]string{
		unix.CAP_CHOWN: "CAP_CHOWN", NetAdmin: "CAP_NET_ADMIN", NetRaw: "CAP_NET_RAW",
		unix.CAP_SYS_ADMIN: "CAP_SYS_ADMIN", unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE", 50: "CAP_50",
	} {
		if got := c.String(); got != want {
			t.Errorf("Cap(%d) = %q, want %q", c, got, want)
		}
	}
	if got := (Set(1)<<NetAdmin | 1<<NetRaw).String(); got != "CAP_NET_ADMIN,CAP_NET_RAW" {
		t.Errorf("set = %q", got)
	}
	if got := Set(0).String(); got != "none" {
		t.Errorf("empty set = %q", got)
	}
}

func TestAnnotate(t *testing.T) {
	admin := Set(1) << NetAdmin
	eperm := fmt.Errorf("TUNSETIFF gogoc: %w", unix.EPERM)
	cases := []struct {
		name  string
		err   error
		eff   Set
		known bool
		want  string // "" = unchanged
	}{
		{"missing", eperm, 0, true, "TUNSETIFF gogoc: operation not permitted (needs CAP_NET_ADMIN)"},
		{"eacces missing", unix.EACCES, 0, true, "permission denied (needs CAP_NET_ADMIN)"},
		{"held: another reason", eperm, admin, true, ""},
		{"other errno", fmt.Errorf("x: %w", unix.ENODEV), 0, true, ""},
		{"capget failed", eperm, admin, false, "TUNSETIFF gogoc: operation not permitted (needs CAP_NET_ADMIN)"},
	}
	for _, c := range cases {
		got := annotate(c.err, NetAdmin, c.eff, c.known)
		if c.want == "" {
			if got != c.err {
				t.Errorf("%s: changed to %v", c.name, got)
			}
			continue
		}
		if got.Error() != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if !errors.Is(got, unix.EPERM) && !errors.Is(got, unix.EACCES) {
			t.Errorf("%s: errno lost from the chain", c.name)
		}
		if cp, ok := IsMissing(fmt.Errorf("outer: %w", got)); !ok || cp != NetAdmin {
			t.Errorf("%s: IsMissing = %v %v", c.name, cp, ok)
		}
	}
	// Named once only, by the innermost operation.
	inner := annotate(eperm, NetRaw, 0, true)
	if got := annotate(fmt.Errorf("outer: %w", inner), NetAdmin, 0, true); strings.Count(got.Error(), "needs") != 1 {
		t.Errorf("named twice: %v", got)
	}
	if Annotate(nil, NetAdmin) != nil {
		t.Error("nil not nil")
	}
}

// TestCurrentUnprivileged runs this test as uid 4242 with the given
// capabilities (captest) and checks what Current reads there.
func TestCurrentUnprivileged(t *testing.T) {
	const name = "TestCurrentUnprivileged"
	if captest.InHelper(name) {
		s, err := Current()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("uid=%d gid=%d eff=%s prm=%s inh=%s amb=%s bnd=%s nnp=%v summary=%s\n", s.EUID, s.EGID, s.Effective, s.Permitted, s.Inheritable, s.Ambient, s.Bounding, s.NoNewPrivs, s.Summary())
		os.Exit(0)
	}
	for caps, want := range map[string]string{
		"+net_admin,+net_raw": "uid=4242 gid=4242 eff=CAP_NET_ADMIN,CAP_NET_RAW prm=CAP_NET_ADMIN,CAP_NET_RAW inh=CAP_NET_ADMIN,CAP_NET_RAW " +
			"amb=CAP_NET_ADMIN,CAP_NET_RAW bnd=CAP_NET_ADMIN,CAP_NET_RAW nnp=true " +
			"summary=running as uid 4242 gid 4242 with capabilities CAP_NET_ADMIN,CAP_NET_RAW (ambient CAP_NET_ADMIN,CAP_NET_RAW), no_new_privs",
		"+net_raw": "uid=4242 gid=4242 eff=CAP_NET_RAW prm=CAP_NET_RAW inh=CAP_NET_RAW amb=CAP_NET_RAW bnd=CAP_NET_RAW nnp=true",
		"":         "uid=4242 gid=4242 eff=none prm=none inh=none amb=none bnd=none nnp=true",
	} {
		if got := captest.Run(t, name, caps, ""); !strings.Contains(got, want) {
			t.Errorf("with %q: %q, want it to contain %q", caps, got, want)
		}
	}
	s, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Summary(), "running as root with all capabilities") {
		t.Errorf("root: %q", s.Summary())
	}
	if !s.Has(NetAdmin) || !s.Has(NetRaw) {
		t.Errorf("root lacks CAP_NET_ADMIN or CAP_NET_RAW: %+v", s)
	}
}

// TestAnnotateReal: a real EPERM (a link added without CAP_NET_ADMIN
// would need a namespace; setting the hostname needs CAP_SYS_ADMIN and
// says EPERM without it) is named only when the capability is missing.
func TestAnnotateReal(t *testing.T) {
	s, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	e := fmt.Errorf("op: %w", unix.EPERM)
	got := Annotate(e, NetAdmin)
	if _, named := IsMissing(got); named == s.Has(NetAdmin) {
		t.Errorf("holding CAP_NET_ADMIN=%v, annotated=%v: %v", s.Has(NetAdmin), named, got)
	}
}

func TestSummary(t *testing.T) {
	all := Set(1)<<41 - 1
	for _, c := range []struct {
		s    State
		want string
	}{
		{State{All: all, Effective: all}, "running as root with all capabilities"},
		{State{All: all, Effective: all &^ (1 << unix.CAP_SYS_RESOURCE)}, "running as root with all capabilities but CAP_SYS_RESOURCE"},
		{State{EUID: 999, EGID: 998, All: all, Effective: 1<<NetAdmin | 1<<NetRaw, Ambient: 1<<NetAdmin | 1<<NetRaw, NoNewPrivs: true},
			"running as uid 999 gid 998 with capabilities CAP_NET_ADMIN,CAP_NET_RAW (ambient CAP_NET_ADMIN,CAP_NET_RAW), no_new_privs"},
		{State{EUID: 999, EGID: 999, All: all}, "running as uid 999 gid 999 with capabilities none"},
	} {
		if got := c.s.Summary(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}
