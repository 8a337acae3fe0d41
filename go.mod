module github.com/jsklein/gogoc

go 1.25

require (
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	golang.org/x/sys v0.37.0
)
