package tsp

import (
	"context"
	"fmt"
	"time"
)

// Echo measures the broker's distance with the TSP echo probe (spec §7.1):
// it sends "ECHO REQUEST" with the RUDP header, up to tries times, waiting
// timeout for each (the old client: 3 tries of 10 s), and returns the
// round-trip time of the answered try together with the status code at the
// start of the reply (0 when it has none). A non-200 status is not an
// error: the old client kept the measured distance, and the caller decides.
// No reply wraps ErrNoReply. The probe uses one sequence number, like any
// exchange, so it is meant for a fresh engine per broker.
func (r *RUDP) Echo(ctx context.Context, tries int, timeout time.Duration) (rtt time.Duration, status int, err error) {
	if tries < 1 || timeout <= 0 {
		return 0, 0, fmt.Errorf("tsp udp echo: need tries >= 1 and a positive timeout, got %d and %v", tries, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	reply, rtt, err := r.roundTrip(ctx, "echo", echoRequest, r.small[:], &echoPlan{tries: tries, timeout: timeout})
	if err != nil {
		return 0, 0, err
	}
	return rtt, leadingStatusCode(reply), nil
}

// leadingStatusCode reads the decimal code that starts a status line, as
// atoi did in the old client, but only when a separator (SP, CR, LF, end)
// follows it, so that a base64 blob starting with digits is not a status.
// It returns 0 when there is no such code or it has more than 9 digits.
func leadingStatusCode(b []byte) int {
	code, i := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i == 9 {
			return 0
		}
		code = code*10 + int(b[i]-'0')
	}
	if i == 0 || (i < len(b) && b[i] != ' ' && b[i] != '\r' && b[i] != '\n') {
		return 0
	}
	return code
}
