// Package agent is the havip-agent daemon: it takes keepalived's
// transitions and makes them real on the node and in the cloud.
//
// Every input (FIFO lines, notify requests, keepalived's liveness, netlink
// address changes, timers) becomes an input to one actor per configured
// VRRP instance. The actor is the only writer of its instance's state; what
// it does for an input is decided by the pure function decide, and carried
// out synchronously for local actions (addresses, announcements), so that a
// newer state always supersedes an older one: nothing from the old state
// lands after the new state's actions.
package agent
