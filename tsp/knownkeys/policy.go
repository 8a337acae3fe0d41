package knownkeys

import (
	"errors"
	"fmt"

	"github.com/jsklein/gogoc/internal/logx"
)

// Policy is server_key_policy: what to do with a key the file does not vouch
// for.
type Policy string

// Policies. The zero value means Strict.
const (
	// Strict refuses an unknown key unless an operator at a terminal says
	// yes (the old client without -y), and refuses a changed key.
	Strict Policy = "strict"
	// TOFU stores an unknown key (trust on first use, the old client's -y)
	// and refuses a changed key.
	TOFU Policy = "tofu"
	// Accept takes any key, known, unknown or changed, and stores nothing.
	// Only for tests and brokers reached over a trusted path.
	Accept Policy = "accept"
)

// Refusals; both wrap the details of host, fingerprints and file line.
var (
	ErrUnknownKey = errors.New("broker key is not in the known keys file")
	ErrKeyChanged = errors.New("broker key differs from the one in the known keys file")
)

// Prompt asks an operator whether to trust host's key. It returns false to
// refuse; an error (end of input included) also refuses.
type Prompt func(host string, k Key) (bool, error)

// Checker applies a policy to the key a broker presents.
type Checker struct {
	Path   string // the known keys file; required unless Policy is Accept
	Policy Policy
	// Prompt, when set, is asked about an unknown key under Strict. Set it
	// only when a person can answer (cmd/gogoc asks on a terminal only).
	Prompt Prompt
	Log    *logx.Logger
}

// Check decides about host's key k. On success it returns commit, to be
// called once the broker has proven it holds k (the DSA signature checked):
// commit stores a newly trusted key, so a broker that fails the proof
// leaves the file untouched. The old client wrote before verifying.
func (c Checker) Check(host string, k Key) (commit func() error, err error) {
	nothing := func() error { return nil }
	log := c.Log
	if log == nil {
		log = logx.Discard()
	}
	fp := k.Fingerprint()
	policy := c.Policy
	if policy == "" {
		policy = Strict
	}
	switch policy {
	case Strict, TOFU, Accept:
	default:
		return nil, fmt.Errorf("known keys: unknown policy %q (want strict, tofu or accept)", policy)
	}
	if c.Path == "" {
		if policy == Accept {
			log.Warn("broker key accepted without a known keys file (server_key_policy=accept)", "broker", host, "key", fp)
			return nothing, nil
		}
		return nil, fmt.Errorf("known keys: server_key_policy=%s needs a known_keys file", policy)
	}
	f, err := Load(c.Path)
	if err != nil {
		if policy == Accept {
			log.Warn("known keys file unreadable; key accepted by policy", "file", c.Path, "err", err)
			return nothing, nil
		}
		return nil, err
	}
	old, lineNo, found := f.Lookup(host)
	switch {
	case found && old.Equal(k):
		log.Debug("broker key matches the known keys file", "broker", host, "key", fp, "file", c.Path, "line", lineNo)
		return nothing, nil
	case found:
		err := fmt.Errorf("%w: %s presents %s, %s:%d has %s", ErrKeyChanged, host, fp, c.Path, lineNo, old.Fingerprint())
		if policy == Accept {
			log.Warn("broker key changed; accepted by policy, file unchanged", "broker", host, "err", err)
			return nothing, nil
		}
		return nil, err
	}
	switch policy {
	case Accept:
		log.Warn("unknown broker key accepted by policy, not stored", "broker", host, "key", fp)
		return nothing, nil
	case Strict:
		if c.Prompt == nil {
			return nil, fmt.Errorf("%w: %s presents %s; check it and add it to %s, or set server_key_policy=tofu to store it on first use",
				ErrUnknownKey, host, fp, c.Path)
		}
		ok, err := c.Prompt(host, k)
		if err != nil {
			return nil, fmt.Errorf("%w: %s presents %s: prompt: %v", ErrUnknownKey, host, fp, err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s presents %s, refused at the prompt", ErrUnknownKey, host, fp)
		}
	}
	return func() error { return c.store(host, k, log) }, nil
}

// store re-reads the file (another process may have written it since
// Check) and appends host's entry unless it is there by now.
func (c Checker) store(host string, k Key, log *logx.Logger) error {
	f, err := Load(c.Path)
	if err != nil {
		return err
	}
	if old, lineNo, found := f.Lookup(host); found {
		if old.Equal(k) {
			return nil
		}
		return fmt.Errorf("%w: %s presents %s, %s:%d has %s (written meanwhile)", ErrKeyChanged, host, k.Fingerprint(), c.Path, lineNo, old.Fingerprint())
	}
	if err := f.Add(host, k); err != nil {
		return err
	}
	if err := f.Save(); err != nil {
		return err
	}
	log.Warn("new broker key stored", "broker", host, "key", k.Fingerprint(), "file", c.Path)
	return nil
}
