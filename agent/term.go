package agent

import "time"

// term is what an actor keeps of the state it has been in since its
// latest transition. A transition replaces it whole, with one assignment
// (actBeginTerm), so nothing of an old term reaches the new one: not a
// burst's remaining announcements, an IPv6 announcement held back for an
// add, a read-only cloud side, nor a streak of netlink failures and its
// backoff.
//
// What outlives a transition stays on the instance: the timers, which the
// plans stop explicitly; the settling of a shared instance's address
// changes, which by design straddles keepalived's state line; and the
// interface found missing, which is a fact about the interface.
type term struct {
	// trans is the record of the transition that began the term; nil for
	// the term an actor starts in (restored from disk, or nothing heard
	// yet).
	trans *Transition
	// announced: trans records the term's first announcement. (Its
	// VIPsDone is zero until recorded.)
	announced bool
	// burstLeft is how many announcements the burst still sends; zero
	// outside a MASTER term.
	burstLeft int
	// vipsAdded: the term's VIPs were added (or found present). IPv4
	// VIPs are announced before that, IPv6 ones only after (an
	// unsolicited NA may have to be sent from the VIP itself); v6Owed
	// marks a v6 announcement held back until the add.
	vipsAdded, v6Owed bool
	// cloudReadOnly: the cloud side was started read-only for a MASTER
	// restored from disk, and keepalived has not confirmed it yet.
	cloudReadOnly bool
	// netDelay is the backoff before the next retry of a failed netlink
	// operation (from netRetryMin), netFailures counts the failures of
	// the streak, and netLogged is when the streak was last logged.
	netDelay    time.Duration
	netFailures int
	netLogged   time.Time
}
