package rtlink

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// linkWatchBuffer is the receive buffer asked for: a bridge re-created
// with its ports and addresses is a burst of notifications.
const linkWatchBuffer = 1 << 20

// WatchLinksAt subscribes, in ns (<= 0: the caller's namespace), to the
// kernel's link and IPv6 address notifications: devices appearing,
// vanishing, going up or down, addresses added or removed. Like
// WatchChanges, each batch leaves a token on the returned channel, which
// holds one. An overrun (ENOBUFS: the kernel dropped notifications) leaves
// a token too, since the watcher looks the state up anyway. The channel is
// closed once done is closed or receiving fails otherwise; that failure
// goes to onErr (if not nil) first.
func WatchLinksAt(ns netns.NsHandle, done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
	if ns <= 0 {
		ns = netns.None()
	}
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_LINK, unix.RTNLGRP_IPV6_IFADDR)
	if err != nil {
		return nil, fmt.Errorf("subscribe to link and address changes: %w", err)
	}
	// Best effort: without it the default buffer overruns sooner, which
	// costs a resync, not a lost change.
	_ = s.SetReceiveBufferSize(linkWatchBuffer, false)
	ch := make(chan struct{}, 1)
	token := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		<-done
		s.Close() // ends the Receive below
	}()
	go func() {
		defer close(ch)
		for {
			msgs, from, err := s.Receive()
			if errors.Is(err, unix.ENOBUFS) {
				token()
				continue
			}
			if err != nil {
				select {
				case <-done:
				default:
					if onErr != nil {
						onErr(fmt.Errorf("link and address changes: %w", err))
					}
				}
				return
			}
			if from.Pid == nl.PidKernel && hasLinkChange(msgs) {
				token()
			}
		}
	}()
	return ch, nil
}

// hasLinkChange tells whether a batch carries a link or address message.
func hasLinkChange(msgs []syscall.NetlinkMessage) bool {
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR:
			return true
		}
	}
	return false
}
