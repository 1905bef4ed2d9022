// Package health runs the agent's own health checks (tcp, http, exec) and
// hands their verdicts to keepalived through track files, so keepalived
// gives up MASTER when the service behind the VIP is sick.
//
// Each check runs in its own goroutine on its own schedule: the first run
// after a random fraction of the interval, then every interval with a
// little jitter. A run never overlaps the previous one of the same check:
// the timeout may exceed the interval, and a run that takes longer than
// the interval is followed at once by the next. A hanging check never
// delays another. Rise consecutive passes make a check Healthy, Fall
// consecutive failures make it Failed; until then its verdict is the one
// it started from: the one kept in its track file (below) or the
// configured initial one.
//
// Exec checks run without a shell, with the environment
// PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C only, as the agent's user
// but without its capabilities (the ambient set is cleared for them), in
// their own process group. On timeout the whole group is killed with
// SIGKILL, and so is whatever the command left in its group when it
// exits: nothing a check starts outlives its run. Runner.IsCheckProcess
// recognises the group's processes, so the control socket can refuse them
// its write requests. ValidateCommand refuses commands a non-root user
// could change, like keepalived's enable_script_security, and checks the
// script an interpreter (sh, python3, ...) is given as it checks the
// program.
//
// # Track files
//
// A check with a track file has it replaced atomically (temporary file,
// fsync, rename) on every verdict change. It holds "0\n" while the check
// is healthy and "<track_value_failed>\n" while it is failed. While a
// result agrees with the verdict, the file's modification time is
// refreshed every few seconds; the content stays. A failed write is
// logged, shown in Status.TrackError and retried after the next result;
// the checks go on. The agent leaves the file as it is when it stops.
//
// At start a check keeps the verdict in its track file when the file is
// valid (a regular file holding a value the agent writes) and recent:
// modified during the current boot and at most 5 minutes (plus a few
// check periods) ago. So a restart of the agent (an upgrade, a crash, a
// watchdog restart) does not change what keepalived reads, even with
// weight 0. Otherwise the check starts from its initial verdict and the
// file is rewritten with it. Rise and fall count from zero either way.
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
