package agent

import (
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
)

// Observer receives what the daemon does, for metrics. Every method must
// be cheap and must not block: some run on the failover path.
type Observer interface {
	CloudObserver
	SetState(vrrpInstance string, state vocab.State)
	Transition(vrrpInstance string, to vocab.State, at time.Time)
	VIPPresent(vrrpInstance, vip string, present bool)
	Announcements(vrrpInstance string, n int)
	FIFOLine()
	FIFOIgnored(reason string)
	CheckResult(check string, ok bool, d time.Duration)
	CheckVerdict(check string, healthy bool)
	CheckInstance(vrrpInstance, check string)
	// CloudReady reports whether the cloud provider is set up.
	CloudReady(ready bool)
	// Reload reports the outcome of a configuration reload.
	Reload(ok bool)
	// ForgetInstance drops the series of an instance a reload removed.
	ForgetInstance(vrrpInstance string)
	// Drained reports whether an instance is drained.
	Drained(vrrpInstance string, drained bool)
	// HookStarted creates a hook's series; HookRun reports how one run
	// ended and HookDropped an event the hook did not run for.
	HookStarted(hook string, results []string)
	HookRun(hook, result string, d time.Duration)
	HookDropped(hook string)
}

// nopObserver is used when no observer is configured, so call sites need
// no nil checks.
type nopObserver struct{}

func (nopObserver) CloudOwned(string, string, bool)           {}
func (nopObserver) Reclaim(string, string)                    {}
func (nopObserver) Conflict(string, string)                   {}
func (nopObserver) Phase(string, vocab.Phase, time.Duration)  {}
func (nopObserver) SetState(string, vocab.State)              {}
func (nopObserver) Transition(string, vocab.State, time.Time) {}
func (nopObserver) VIPPresent(string, string, bool)           {}
func (nopObserver) Announcements(string, int)                 {}
func (nopObserver) FIFOLine()                                 {}
func (nopObserver) FIFOIgnored(string)                        {}
func (nopObserver) CheckResult(string, bool, time.Duration)   {}
func (nopObserver) CheckVerdict(string, bool)                 {}
func (nopObserver) CheckInstance(string, string)              {}
func (nopObserver) CloudReady(bool)                           {}
func (nopObserver) Reload(bool)                               {}
func (nopObserver) ForgetInstance(string)                     {}
func (nopObserver) Drained(string, bool)                      {}
func (nopObserver) HookStarted(string, []string)              {}
func (nopObserver) HookRun(string, string, time.Duration)     {}
func (nopObserver) HookDropped(string)                        {}
