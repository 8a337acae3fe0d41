package tunnel

import (
	"context"
	"errors"
	"fmt"

	"github.com/jsklein/gogoc/internal/logx"
)

// Data planes, the values of Config.DataPlane and of PlaneOf.
const (
	PlaneAuto      = "auto"
	PlaneKernel    = "kernel"
	PlaneUserspace = "userspace"
)

// ErrNoKernelSupport says the running kernel cannot build the tunnel device
// (module missing or not loadable): "auto" falls back to userspace on it.
var ErrNoKernelSupport = errors.New("kernel tunnel support missing")

// planer is implemented by every Tunnel of this package.
type planer interface{ plane() string }

// PlaneOf reports which data plane t runs on: "kernel" or "userspace"
// ("" for a Tunnel not built by this package).
func PlaneOf(t Tunnel) string {
	if p, ok := t.(planer); ok {
		return p.plane()
	}
	return ""
}

func (u *userspace) plane() string { return PlaneUserspace }

// New builds the data plane cfg.DataPlane asks for. With "auto" it tries
// the kernel first and falls back to userspace, logging why, when the
// kernel lacks the modules; a kernel error of any other kind is returned,
// since userspace would most likely fail the same way. ctx bounds only the
// set-up.
//
// For v6udpv4 the kernel plane takes Config.Conn over: it closes it (the
// fou port must bind the same local port), so the caller must not use it
// afterwards. The fall-back decision is made before that point, so a
// userspace fall-back still gets an open Conn.
func New(ctx context.Context, cfg Config) (Tunnel, error) {
	plane := cfg.DataPlane
	if plane == "" {
		plane = PlaneAuto
	}
	switch plane {
	case PlaneAuto, PlaneKernel, PlaneUserspace:
	default:
		return nil, fmt.Errorf("data plane %q: want auto, kernel or userspace", cfg.DataPlane)
	}
	log := cfg.Log
	if log == nil {
		log = logx.Discard()
	}

	var kernelFn, userFn func(context.Context, Config) (Tunnel, error)
	switch cfg.Type {
	case V6V4, V6UDPV4:
		kernelFn, userFn = newKernel, newUserspace
	case V4V6:
		kernelFn, userFn = newKernelV4V6, newUserspaceV4V6
	default:
		return nil, fmt.Errorf("data plane for tunnel type %v: %w", cfg.Type, ErrUnsupported)
	}

	if plane == PlaneUserspace {
		return userFn(ctx, cfg)
	}
	t, err := kernelFn(ctx, cfg)
	if err == nil || plane == PlaneKernel || !errors.Is(err, ErrNoKernelSupport) {
		return t, err
	}
	log.Warn("kernel data plane unavailable, using userspace", "mode", cfg.Type.String(), "reason", err)
	return userFn(ctx, cfg)
}
