package rtlink

import (
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// WatchChanges subscribes, in the caller's network namespace, to the
// kernel's IPv4 and IPv6 address and route notifications. Each batch of
// them leaves a token on the returned channel, which holds one: a pending
// token stands for any number of changes, since a watcher looks the
// current state up anyway. The channel is closed once done is closed or
// receiving fails; a failure goes to onErr (if not nil) first.
//
// It replaces the library's route subscription, which decodes every route
// and so links the link-type code (through the SEG6 encapsulation's
// String, which looks devices up).
func WatchChanges(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE,
		unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("subscribe to address and route changes: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		<-done
		s.Close() // ends the Receive below
	}()
	go func() {
		defer close(ch)
		for {
			msgs, from, err := s.Receive()
			if err != nil {
				select {
				case <-done:
				default:
					if onErr != nil {
						onErr(fmt.Errorf("address and route changes: %w", err))
					}
				}
				return
			}
			if from.Pid != nl.PidKernel || !hasChange(msgs) {
				continue
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}

// hasChange tells whether a batch carries an address or route message
// (not only a bare done or acknowledgement).
func hasChange(msgs []syscall.NetlinkMessage) bool {
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			return true
		}
	}
	return false
}
