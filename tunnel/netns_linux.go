package tunnel

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/internal/rtlink"
)

// InNetNS runs fn on an OS thread switched into ns, so that sockets and TUN
// devices fn creates belong to ns (they keep that namespace afterwards). A
// handle <= 0 means the current namespace and fn runs directly.
func InNetNS(ns netns.NsHandle, fn func() error) error {
	if ns <= 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: keep it locked so that the
		// runtime retires it when this goroutine ends instead of reusing it.
		return fmt.Errorf("restore netns: %w (after %v)", err, fnErr)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// netlinkHandle returns cfg's handle, or opens one in its namespace; owned
// tells the caller to close it.
func netlinkHandle(h *rtlink.Handle, ns netns.NsHandle) (_ *rtlink.Handle, owned bool, err error) {
	if h != nil {
		return h, false, nil
	}
	if h, err = rtlink.NewHandleAt(ns); err != nil {
		return nil, false, fmt.Errorf("netlink handle: %w", err)
	}
	return h, true, nil
}
