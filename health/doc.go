// Package health runs the agent's own health checks (tcp, http, exec) and
// hands their verdicts to keepalived through track files, so keepalived
// gives up MASTER when the service behind the VIP is sick.
//
// Each check runs in its own goroutine on its own schedule: the first run
// after a random fraction of the interval, then every interval with a
// little jitter. A run never overlaps the previous one of the same check
// (the timeout is shorter than the interval) and a hanging check never
// delays another. Rise consecutive passes make a check Healthy, Fall
// consecutive failures make it Failed; until then its verdict is the
// configured initial one.
//
// Exec checks run without a shell, with the environment
// PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C only, in their own process
// group; on timeout the whole group is killed with SIGKILL. ValidateCommand
// refuses commands a non-root user could change, like keepalived's
// enable_script_security.
//
// # Track files
//
// A check with a track file has it replaced atomically (temporary file,
// fsync, rename) at start with the initial verdict and on every verdict
// change. It holds "0\n" while the check is healthy and
// "<track_value_failed>\n" while it is failed. A failed write is logged,
// shown in Status.TrackError and retried after the next result; the checks
// go on. The agent leaves the file as it is when it stops.
//
// keepalived (2.x) declares the file with a top-level track_file block
// (vrrp_track_file in older releases), reads it whenever it changes, and
// multiplies the value by the weight. There are two ways to use it.
//
// With weight 0, any non-zero value puts the instance into FAULT: it
// releases the VIP at once, whatever the peer's state. Use this when the
// node must never serve without the service:
//
//	track_file nginx {
//	    file "/run/havip-agent/track/nginx"
//	    weight 0
//	}
//
//	vrrp_instance VI_1 {
//	    state BACKUP
//	    interface eth0
//	    virtual_router_id 51
//	    priority 150
//	    track_file {
//	        nginx             # weight 0 from the block: non-zero value is FAULT
//	    }
//	}
//
// With a negative weight, value * weight is added to the priority: with
// track_value_failed = 1 and weight -20, a failed check lowers priority 150
// to 130, so a healthy peer at 140 takes over (with preemption), while a
// node whose peer is sick too keeps the VIP. Choose the weight larger than
// the gap between the priorities:
//
//	track_file nginx {
//	    file "/run/havip-agent/track/nginx"
//	    weight -20
//	}
//
//	vrrp_instance VI_1 {
//	    ...
//	    priority 150
//	    track_file {
//	        nginx weight -20  # failed: 150 + 1 * -20 = 130
//	    }
//	}
//
// A weight given where the instance tracks the file overrides the one in
// the track_file block.
package health
