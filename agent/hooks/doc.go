// Package hooks runs the operator's own actions on the daemon's events: a
// program (exec) or a POST to a URL (http), given a JSON Payload that
// says what happened (a transition, cloud claims and confirmations, cloud
// errors, conflicts, drains), with the phase timings, every cloud
// resource's outcome and API request id, and the node's identity.
//
// Hooks never touch the failover path. Runner.Fire only appends the event
// to a bounded queue per hook and instance and returns; it never waits
// for a hook, the disk or a log line. An event that finds its queue full
// is dropped and counted (Status.Drops, Observer.HookDropped), and the
// hook's worker logs the drops once when it takes its next event.
//
// Per hook and instance the runs go in the order the events were fired,
// one at a time, on a goroutine that exists only while the queue is not
// empty. Different hooks, and one hook for different instances, run in
// parallel. A newer event never kills, cancels or overtakes a running
// hook: only the hook's own timeout ends it. Close stops accepting
// events, lets the queued and running ones finish until its context is
// done, then ends them and returns once every goroutine has.
//
// Exec hooks run without a shell, with the environment
// PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C plus HAVIP_HOOK,
// HAVIP_EVENT, HAVIP_INSTANCE, HAVIP_FROM, HAVIP_TO and HAVIP_GENERATION,
// in / and in a process group of their own, without the agent's ambient
// capabilities, like exec health checks, and at a lower CPU priority than
// the agent (a higher niceness), so that a hook program yields the CPU to
// the next failover; their program is held to the same ownership and
// permission rule (health.ValidateCommand) before every run. The payload is on standard input. On timeout the whole
// group is killed with SIGKILL, and so is whatever the program left in
// its group when it exits. The first OutputLimit bytes of the output go
// to the log. Exit status 0 is success.
//
// Http hooks POST the payload (Content-Type application/json) with the
// configured headers. TLS is verified against the system's roots, plus a
// CA file when one is configured; it cannot be turned off. Redirects are
// not followed. A network error, a 5xx or a 429 is retried, up to
// Retries times, after a backoff that doubles from BackoffMin to
// BackoffMax with jitter, or after the answer's Retry-After; a retry
// that would start past the timeout is not made. Other answers are final;
// a 2xx is success.
package hooks
