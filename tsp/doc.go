// Package tsp speaks the Tunnel Setup Protocol (RFC 5572) as a client, byte
// for byte compatible with gogoc 1.2 and the brokers it talks to.
//
// The package never opens a socket itself: callers hand it a Transport built
// on a connection they dialled (NewRUDP, NewTCP), or a Dialer that does so,
// which keeps every part of the protocol testable against injected
// connections. A Session runs one negotiation on one transport; Negotiate
// adds the version and transport fallback of the old client on top.
package tsp
