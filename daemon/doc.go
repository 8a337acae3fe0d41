// Package daemon is gogoc's supervisor: it keeps one tunnel up for as long
// as it runs and is the only place that knows about time, retries and
// signals (the command turns signals into Reconnect, Reload and context
// cancellation).
//
// States: idle → negotiating → up → lost → negotiating …, with backoff
// after a failed attempt and stopped at the end. Every transition is logged
// and counted. A lost tunnel (keepalive loss, a broker 310, a WAN change, a
// reconnect request, the offer lifetime running out) is renegotiated at
// once, except that with auto_retry_connect no a tunnel that failed by
// itself waits a back-off first; failed attempts wait a back-off with full jitter between
// retry_delay and a bound that doubles up to retry_delay_max, reset after a
// tunnel that stayed up. No broker is asked more than once per second.
//
// WAN changes: the watch (WANWatcher) reports each change of the path to
// the broker against the path the tunnel was built on. The daemon acts
// once the path has been still for Timings.WANSettle: a burst (an address
// replaced, a link flapping) costs one renegotiation on the path it ended
// in, a path back as it was keeps the tunnel, and a report about an
// earlier tunnel's path (made before the watch learnt of the new one) is
// ignored. During a back-off any settled move of the path cuts it short.
//
// Brokers: the configured server first (or, with always_use_same_server,
// the one in tsp-last-server.txt and only that); a redirect's list is
// ordered by TSP echo distance (spec §7.1) and written to
// tsp-broker-list.txt; when the configured server cannot be reached the
// daemon fails over through that list. Relative file names resolve in the
// state directory, by default the directory of the status file
// (/var/run/gogoc), which is RAM on OpenWrt and so spares the flash.
//
// A broker a redirect named stays a redirect target wherever the daemon
// keeps it (the broker in use, both files, which say so in an origin line
// starting with '#'): the address its name leads to passes tsp's address
// policy before any packet goes there, distance probes included, and with
// auth_method plain it is never used (PLAIN goes only to the configured
// server). A broker list of an older release, without the origin line, is
// read as a far broker's redirect; so is its last server, unless it is the
// configured one.
//
// The status of the daemon is written atomically to a JSON file (Status)
// that `gogoc status` and LuCI read.
package daemon
