package agent

import "time"

// Observer receives what the daemon does, for metrics. Every method must
// be cheap and must not block: some run on the failover path.
type Observer interface {
	CloudObserver
	SetState(vrrpInstance, state string)
	Transition(vrrpInstance, to string, at time.Time)
	VIPPresent(vrrpInstance, vip string, present bool)
	Announcements(vrrpInstance string, n int)
	FIFOLine()
	FIFOIgnored(reason string)
}
