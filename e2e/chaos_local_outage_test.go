package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/e2e/chaos"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// agentGone waits until process pid has ended (or is a zombie).
func agentGone(pid int, timeout time.Duration) bool {
	_, ok := waitFor(timeout, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		i := strings.LastIndexByte(string(b), ')')
		return i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
	})
	return ok
}

// restartAgentWith stops a node's agent (SIGTERM, as systemctl restart
// does) and starts it again with env and under wrapper (none: as the rig
// starts it).
func (s *chaosSuite) restartAgentWith(node string, env []string, wrapper ...string) {
	s.t.Helper()
	pid := s.agents[node].AgentPID()
	s.endAgent(node, syscall.SIGTERM)
	// A wrapper may end before the agent it forwarded the signal to.
	if pid > 0 && !agentGone(pid, 15*time.Second) {
		syscall.Kill(pid, syscall.SIGKILL)
		agentGone(pid, 5*time.Second)
	}
	if err := s.agents[node].Agent.StartWith(env, wrapper...); err != nil {
		s.t.Fatal(err)
	}
}

// ---- 15 slow-fsync ----

// syncDelay is how long strace holds each fsync and fdatasync of the
// agent; a record's sync is two of them (the file, then its directory).
const syncDelay = 2 * time.Second

// watchdogInterval is the WATCHDOG_USEC the agents get in scenario 15:
// short, so that an actor held up by a sync would miss it.
const watchdogInterval = 3 * time.Second

// notifyLog receives an agent's sd_notify datagrams.
type notifyLog struct {
	c    *net.UnixConn
	mu   sync.Mutex
	pats []time.Time // WATCHDOG=1
	done chan struct{}
}

func listenNotify(path string) (*notifyLog, error) {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	n := &notifyLog{c: c, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:k]), "WATCHDOG=1") {
				n.mu.Lock()
				n.pats = append(n.pats, time.Now())
				n.mu.Unlock()
			}
		}
	}()
	return n, nil
}

// maxGap is the longest time without a watchdog ping in [from, to].
func (n *notifyLog) maxGap(from, to time.Time) (time.Duration, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	last, gap, count := from, time.Duration(0), 0
	for _, p := range n.pats {
		if p.Before(from) || p.After(to) {
			continue
		}
		gap = max(gap, p.Sub(last))
		last = p
		count++
	}
	return max(gap, to.Sub(last)), count
}

func (n *notifyLog) close() {
	n.c.Close()
	<-n.done
}

// straceSync is strace holding every fsync and fdatasync of the agent it
// starts for d; -D makes the started process the agent itself (strace
// traces it from a grandchild), so signals reach the agent, and -ttt -T
// write each call's start and duration to out.
func straceSync(d time.Duration, out string) []string {
	ms := strconv.FormatInt(d.Microseconds(), 10) + "us"
	return []string{"strace", "-D", "-f", "--seccomp-bpf", "-qq", "-ttt", "-T",
		"-e", "trace=fsync,fdatasync", "-e", "signal=none", "-e", "inject=fsync:delay_enter=" + ms, "-e", "inject=fdatasync:delay_enter=" + ms, "-o", out}
}

var (
	syncLineRe     = regexp.MustCompile(`^(\d+)\s+(\d+\.\d+) f(?:data)?sync\(.*<(\d+\.\d+)>`)
	syncStartRe    = regexp.MustCompile(`^(\d+)\s+(\d+\.\d+) f(?:data)?sync\(.*<unfinished`)
	syncResumedRe  = regexp.MustCompile(`^(\d+)\s+\d+\.\d+ <\.\.\. f(?:data)?sync resumed>.*<(\d+\.\d+)>`)
	secondsToTimes = func(s string) time.Time {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Unix(0, int64(f*1e9))
	}
)

// syncSpans reads the fsync and fdatasync calls of a strace -f -ttt -T
// output, whole or split by another thread's line.
func syncSpans(path string) [][2]time.Time {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][2]time.Time
	started := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if m := syncLineRe.FindStringSubmatch(l); m != nil {
			start := secondsToTimes(m[2])
			out = append(out, [2]time.Time{start, start.Add(time.Duration(secondsToTimes(m[3]).UnixNano()))})
		} else if m := syncStartRe.FindStringSubmatch(l); m != nil {
			started[m[1]] = secondsToTimes(m[2])
		} else if m := syncResumedRe.FindStringSubmatch(l); m != nil {
			if start, ok := started[m[1]]; ok {
				out = append(out, [2]time.Time{start, start.Add(time.Duration(secondsToTimes(m[2]).UnixNano()))})
				delete(started, m[1])
			}
		}
	}
	return out
}

// transitionLog is one transition as an agent logged it.
type transitionLog struct {
	at                time.Time
	to                string
	vipsDone, firstAn time.Duration
}

var transitionTimesRe = regexp.MustCompile(`^time=(\S+) level=\S+ msg=transition vrrp_instance=VI_1 from=\S+ to=(\S+) .*?vips_done=(\S+)(?: first_announcement=(\S+))?`)

func transitions(log string) []transitionLog {
	var out []transitionLog
	for _, l := range strings.Split(log, "\n") {
		m := transitionTimesRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		t := transitionLog{at: at, to: m[2]}
		t.vipsDone, _ = time.ParseDuration(m[3])
		if m[4] != "" {
			t.firstAn, _ = time.ParseDuration(m[4])
		}
		out = append(out, t)
	}
	return out
}

// scenarioSlowSync: both agents run under strace, which holds every
// fsync for syncDelay (a record's sync takes two), with a systemd
// watchdog of watchdogInterval. Runs are failovers back and forth, one
// right after the other, so that transitions come while syncs are
// pending. The first announcement of each MASTER transition goes out
// long before a sync could end, the watchdog is pinged throughout and
// status keeps answering.
func scenarioSlowSync(s *chaosSuite, runs int) chaos.Result {
	var r chaos.Result
	seq0 := s.lastSeq()
	dir := s.t.TempDir()
	notes := map[string]*notifyLog{}
	traces := map[string]string{}
	for _, n := range []string{"n1", "n2"} {
		sock := filepath.Join(dir, "notify-"+n)
		nl, err := listenNotify(sock)
		if err != nil {
			s.t.Fatal(err)
		}
		defer nl.close()
		notes[n] = nl
		traces[n] = filepath.Join(dir, "strace-"+n)
		s.restartAgentWith(n, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=" + strconv.FormatInt(watchdogInterval.Microseconds(), 10)}, straceSync(syncDelay, traces[n])...)
	}
	defer func() {
		for _, n := range []string{"n1", "n2"} {
			s.restartAgentWith(n, nil)
		}
	}()
	arps := s.watchARP()
	defer arps.close()
	// status, polled throughout: its slowest answer.
	var slowest time.Duration
	statusErrs := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, n := range []string{"n1", "n2"} {
				t0 := time.Now()
				if _, err := s.agents[n].Status(); err != nil {
					statusErrs++
				}
				slowest = max(slowest, time.Since(t0))
			}
		}
	}()
	from := time.Now()
	var wire []time.Duration
	target := "n1"
	for i := 0; i < runs; i++ {
		target = peerOf(target)
		what := fmt.Sprintf("run %d (to %s)", i+1, target)
		seq := s.lastSeq()
		start := time.Now()
		s.failTo(target)
		d, ok := s.converge(target, start)
		r.Run(ok, d)
		if !ok {
			r.Violate("%s: not converged on %s (holders %v)", what, target, s.h.Holders())
			continue
		}
		is, _ := s.instanceStatus(target)
		if line := masterLine(is); !line.IsZero() {
			if at, ok := arps.first(s.mac(target), line); ok {
				wire = append(wire, at.Sub(line))
			}
		}
		if sw := s.switchesSince(seq); sw != 1 {
			r.Violate("%s: %d switches, want 1", what, sw)
		}
	}
	time.Sleep(outageSettle())
	close(stop)
	wg.Wait()
	to := time.Now()
	s.single(&r, target, 300*time.Millisecond, "after the runs")

	var firsts []time.Duration
	var others []time.Duration
	pendingAt, syncs := 0, 0
	var gaps []string
	for _, n := range []string{"n1", "n2"} {
		spans := syncSpans(traces[n])
		syncs += len(spans)
		for _, tr := range transitions(s.agents[n].logs()) {
			if tr.at.Before(from) {
				continue
			}
			received := tr.at.Add(-tr.vipsDone)
			for _, sp := range spans {
				if !received.Before(sp[0]) && received.Before(sp[1]) {
					pendingAt++
					break
				}
			}
			if tr.to == "MASTER" {
				firsts = append(firsts, tr.firstAn)
				// Well before a sync could have ended: an actor that
				// waited on one would show the rest of its delay here.
				if tr.firstAn >= syncDelay/2 {
					r.Violate("%s: first announcement %s after the MASTER line, with syncs held %s", n, tr.firstAn, syncDelay)
				}
			} else {
				others = append(others, tr.vipsDone)
				if tr.vipsDone >= syncDelay/2 {
					r.Violate("%s: VIPs removed %s after the %s line, with syncs held %s", n, tr.vipsDone, tr.to, syncDelay)
				}
			}
		}
		gap, pings := notes[n].maxGap(from, to)
		gaps = append(gaps, fmt.Sprintf("%s %s (%d pings)", n, gap.Round(10*time.Millisecond), pings))
		if gap >= watchdogInterval {
			r.Violate("%s: no watchdog ping for %s (WATCHDOG_USEC %s)", n, gap.Round(time.Millisecond), watchdogInterval)
		}
		if strings.Contains(s.agents[n].logs(), "withholding the watchdog ping") {
			r.Violate("%s: an actor loop did not answer the watchdog", n)
		}
	}
	if statusErrs > 0 {
		r.Violate("status failed %d times during the slow syncs", statusErrs)
	}
	if slowest >= syncDelay/2 {
		r.Violate("status took %s to answer, with syncs held %s", slowest, syncDelay)
	}
	if syncs == 0 {
		r.Violate("strace saw no fsync: the scenario did not run")
	}
	s.attributed(&r, seq0)
	s.baseline(&r)
	r.Figure("fsync and fdatasync held", "%s each (%d calls)", syncDelay, syncs)
	r.Figure("transitions while a sync was pending", "%d", pendingAt)
	r.Figure("MASTER line to first announcement (agent)", "%s", quantiles(firsts))
	r.Figure("MASTER line to first ARP on the wire", "%s", quantiles(wire))
	r.Figure("other lines to VIPs removed", "%s", quantiles(others))
	r.Figure("longest watchdog gap", "%s (WATCHDOG_USEC %s)", strings.Join(gaps, ", "), watchdogInterval)
	r.Figure("slowest status", "%s", slowest.Round(100*time.Microsecond))
	return r
}

// ---- 16 netlink-failing ----

// netlinkFailure is how long the agent's sendto calls (netlink requests,
// and the ARP sends with them) fail with ENOBUFS, from the line that
// makes it act.
const netlinkFailure = time.Second

// addRetryMax is the agent's longest wait between two netlink adds of a
// missing VIP (agent.addRetryMax).
const addRetryMax = time.Second

// failSendto attaches strace to a node's agent so that every sendto fails
// with ENOBUFS (the vishvananda/netlink library sends each request with
// sendto); the returned function detaches it and returns when the
// failures have ended.
func (s *chaosSuite) failSendto(node string) func() time.Time {
	s.t.Helper()
	p, err := rig.Strace(s.agents[node].AgentPID(), "-e", "trace=sendto", "-e", "inject=sendto:error=ENOBUFS")
	if err != nil {
		s.t.Fatal(err)
	}
	return func() time.Time {
		p.Stop(syscall.SIGINT)
		return time.Now()
	}
}

// scenarioNetlinkFailing: the agent's netlink requests fail for
// netlinkFailure (strace injecting ENOBUFS into its sendto calls: memory
// pressure on the netlink socket), in turn on the node becoming MASTER
// (its adds fail) and on the MASTER stepping down (its removes fail).
// Once the failures end the new MASTER has the VIP within the agent's
// add backoff and announces it again after the add; the old one no
// longer holds it, so the VIP ends on exactly one node.
func scenarioNetlinkFailing(s *chaosSuite, runs int) chaos.Result {
	var r chaos.Result
	seq0 := s.lastSeq()
	arps := s.watchARP()
	defer arps.close()
	vips := s.trackVIP()
	defer vips.close()
	var added, announced, removed []time.Duration
	cases := map[string]int{}
	target := "n1"
	for i := 0; i < runs; i++ {
		target = peerOf(target)
		old := peerOf(target)
		failing, name := target, "adds fail on the new MASTER"
		if i%2 == 1 {
			failing, name = old, "removes fail on the MASTER stepping down"
		}
		what := fmt.Sprintf("run %d %s (%s)", i+1, name, failing)
		cases[name]++
		seq := s.lastSeq()
		end := s.failSendto(failing)
		start := time.Now()
		s.failTo(target)
		// The failures last netlinkFailure from the line that makes the
		// failing agent act.
		if failing == target {
			if _, ok := s.waitState(target, agent.StateMaster, convergeTimeout); !ok {
				r.Violate("%s: %s never became MASTER", what, target)
			}
		} else {
			waitFor(convergeTimeout, func() bool {
				is, up := s.instanceStatus(old)
				return up && is.State != agent.StateMaster
			})
		}
		time.Sleep(netlinkFailure)
		ended := end()
		if failing == target {
			at, ok := vips.firstPresent(target, ended)
			if !ok {
				waitFor(10*time.Second, func() bool { _, ok = vips.firstPresent(target, ended); return ok })
				at, ok = vips.firstPresent(target, ended)
			}
			if !ok {
				r.Violate("%s: the VIP was not added after the failures ended", what)
			} else {
				added = append(added, at.Sub(ended))
				if at.Sub(ended) > addRetryMax+time.Second {
					r.Violate("%s: the VIP was added %s after the failures ended, the add backoff is at most %s", what, at.Sub(ended).Round(time.Millisecond), addRetryMax)
				}
				waitFor(2*time.Second, func() bool { _, ok := arps.first(s.mac(target), at); return ok })
				if an, ok := arps.first(s.mac(target), at); ok {
					announced = append(announced, an.Sub(at))
				} else {
					r.Violate("%s: no announcement after the VIP was added", what)
				}
			}
		}
		if failing == old {
			var at time.Time
			_, ok := waitFor(convergeTimeout, func() bool {
				var ok bool
				at, ok = vips.firstAbsent(old, ended)
				return ok
			})
			if !ok {
				r.Violate("%s: the VIP stayed on %s after the failures ended", what, old)
			} else {
				removed = append(removed, at.Sub(ended))
				// A VIP left on the node that stepped down is on two
				// nodes: removing it again is as urgent as an add.
				if at.Sub(ended) > addRetryMax+time.Second {
					r.Violate("%s: the VIP was removed from %s %s after the failures ended (on both nodes meanwhile)", what, old, at.Sub(ended).Round(time.Millisecond))
				}
			}
		}
		d, ok := s.converge(target, start)
		r.Run(ok, d)
		if !ok {
			is, _ := s.instanceStatus(failing)
			r.Violate("%s: not converged on %s: holders %v, cloud on it %v; %s's agent: %s, last error %q", what, target, s.h.Holders(), s.cloudOn(target), failing, is.State, is.LastError)
			s.baseline(&r)
			target = "n1"
			continue
		}
		time.Sleep(outageSettle())
		s.single(&r, target, 300*time.Millisecond, what)
		if sw := s.switchesSince(seq); sw != 1 {
			r.Violate("%s: %d switches, want 1", what, sw)
		}
	}
	s.attributed(&r, seq0)
	s.baseline(&r)
	r.Figure("failures", "every sendto ENOBUFS for %s from the line (%s)", netlinkFailure, histogram(cases))
	r.Figure("VIP added after the failures ended", "%s", quantiles(added))
	r.Figure("announcement after the add", "%s", quantiles(announced))
	r.Figure("VIP removed from the old MASTER after the failures ended", "%s", quantiles(removed))
	return r
}
