package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// TestDrainWatch drives the drain's watch with what the daemon would see,
// look by look, and checks the timeline it prints and when it is done.
func TestDrainWatch(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	havip := cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-1"}}
	route := cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{Table: "rt-1", Destination: "0.0.0.0/0"}}
	follows := cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{Table: "rt-2", Destination: "10.0.0.0/8"}}
	here := func(r cloud.Resource) drainRead {
		return drainRead{key: r.Key(), o: cloud.Ownership{Owned: true, Current: "i-self"}}
	}
	at := func(r cloud.Resource, cur string) drainRead {
		return drainRead{key: r.Key(), o: cloud.Ownership{Current: cur}}
	}
	type look struct {
		after time.Duration
		state State
		reads []drainRead
	}
	for _, tc := range []struct {
		name  string
		res   []cloud.Resource
		looks []look
		want  []string // the timeline
		done  bool
		stuck string // what stuck() says at the end, when not done
	}{
		{
			name: "MASTER steps down, the HAVIP and then the route move",
			res:  []cloud.Resource{havip, route},
			looks: []look{
				{after: 50 * time.Millisecond, state: StateMaster},
				{after: 300 * time.Millisecond, state: StateFault},
				{after: 800 * time.Millisecond, state: StateFault, reads: []drainRead{here(havip), here(route)}},
				{after: 1300 * time.Millisecond, state: StateFault, reads: []drainRead{at(havip, "i-peer"), here(route)}},
				{after: 1800 * time.Millisecond, state: StateFault, reads: []drainRead{at(havip, "i-peer"), at(route, "dcgw-peer")}},
			},
			want: []string{
				" +0.30s  VI_1  left MASTER: now FAULT",
				" +1.30s  VI_1  the cloud sees peer i-peer as MASTER (havip/havip-1)",
				" +1.30s  VI_1  havip/havip-1 moved to i-peer",
				" +1.80s  VI_1  route/rt-1/0.0.0.0/0 moved to dcgw-peer",
				" +1.80s  VI_1  drained: left MASTER and the cloud points elsewhere",
			},
			done: true,
		},
		{
			name: "a route that follows the HAVIP is not waited for",
			res:  []cloud.Resource{havip, follows},
			looks: []look{
				{after: 0, state: StateMaster},
				{after: 100 * time.Millisecond, state: StateBackup},
				{after: 600 * time.Millisecond, state: StateBackup, reads: []drainRead{at(havip, "i-peer"),
					{key: follows.Key(), o: cloud.Ownership{Owned: true, Shape: cloud.ShapeHAVIP, Current: "havip-1"}}}},
			},
			want: []string{
				" +0.10s  VI_1  left MASTER: now BACKUP",
				" +0.60s  VI_1  the cloud sees peer i-peer as MASTER (havip/havip-1)",
				" +0.60s  VI_1  havip/havip-1 moved to i-peer",
				" +0.60s  VI_1  route/rt-2/10.0.0.0/8 follows the HAVIP (its next hop is the HAVIP)",
				" +0.60s  VI_1  drained: left MASTER and the cloud points elsewhere",
			},
			done: true,
		},
		{
			name:  "no cloud resources: done once out of MASTER",
			looks: []look{{after: 0, state: StateMaster}, {after: 200 * time.Millisecond, state: StateFault}},
			want: []string{
				" +0.20s  VI_1  left MASTER: now FAULT",
				" +0.20s  VI_1  drained: left MASTER (no cloud resources, so whether a peer took over is not checked)",
			},
			done: true,
		},
		{
			name:  "keepalived does not step down",
			res:   []cloud.Resource{havip},
			looks: []look{{after: time.Second, state: StateMaster}, {after: 30 * time.Second, state: StateMaster}},
			stuck: "this node is still MASTER (does keepalived watch the drain_file with weight 0? havip-agent config check -keepalived tells)",
		},
		{
			name: "not MASTER at the drain, the cloud already elsewhere",
			res:  []cloud.Resource{havip},
			looks: []look{
				{after: 10 * time.Millisecond, state: StateBackup},
				{after: 20 * time.Millisecond, state: StateBackup, reads: []drainRead{at(havip, "i-peer")}},
			},
			want: []string{
				" +0.01s  VI_1  was not MASTER (BACKUP): nothing to step down",
				" +0.02s  VI_1  the cloud sees peer i-peer as MASTER (havip/havip-1)",
				" +0.02s  VI_1  havip/havip-1 moved to i-peer",
				" +0.02s  VI_1  drained: left MASTER and the cloud points elsewhere",
			},
			done: true,
		},
		{
			name: "the only node: nobody takes the cloud",
			res:  []cloud.Resource{havip, route},
			looks: []look{
				{after: 0, state: StateMaster},
				{after: 200 * time.Millisecond, state: StateFault},
				{after: 700 * time.Millisecond, state: StateFault, reads: []drainRead{{key: havip.Key(), o: cloud.Ownership{}}, here(route)}},
			},
			want:  []string{" +0.20s  VI_1  left MASTER: now FAULT"},
			stuck: "no other node took over: havip/havip-1 points at nothing; route/rt-1/0.0.0.0/0 still points at this node",
		},
		{
			name: "a read fails",
			res:  []cloud.Resource{havip},
			looks: []look{
				{after: 0, state: StateMaster},
				{after: 200 * time.Millisecond, state: StateFault, reads: []drainRead{{key: havip.Key(), err: errors.New("HTTP 503")}}},
			},
			want:  []string{" +0.20s  VI_1  left MASTER: now FAULT"},
			stuck: "no other node took over: havip/havip-1 could not be read: HTTP 503",
		},
		{
			name:  "not read yet",
			res:   []cloud.Resource{havip},
			looks: []look{{after: 0, state: StateMaster}, {after: 200 * time.Millisecond, state: StateFault}},
			want:  []string{" +0.20s  VI_1  left MASTER: now FAULT"},
			stuck: "no other node took over: havip/havip-1 not read yet",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newDrainWatch("VI_1", start, tc.res)
			var got []string
			for _, l := range tc.looks {
				got = append(got, w.step(drainSight{at: start.Add(l.after), state: l.state, reads: l.reads})...)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if w.done != tc.done {
				t.Errorf("done = %v, want %v", w.done, tc.done)
			}
			if !tc.done {
				if got := w.stuck(); got != tc.stuck {
					t.Errorf("stuck() = %q\nwant      %q", got, tc.stuck)
				}
			}
			if w.done && w.step(drainSight{at: start.Add(time.Hour), state: StateMaster}) != nil {
				t.Error("a done watch still reports")
			}
		})
	}
}

// The cloud is read only once the node stepped down, and only while the
// drain waits.
func TestDrainWatchReadsAfterSteppingDown(t *testing.T) {
	havip := cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-1"}}
	w := newDrainWatch("VI_1", time.Now(), []cloud.Resource{havip})
	w.step(drainSight{at: time.Now(), state: StateMaster})
	if w.wantsCloud() {
		t.Error("wants the cloud while MASTER")
	}
	w.step(drainSight{at: time.Now(), state: StateFault})
	if !w.wantsCloud() {
		t.Error("does not want the cloud once stepped down")
	}
	w.step(drainSight{at: time.Now(), state: StateFault, reads: []drainRead{{key: havip.Key(), o: cloud.Ownership{Current: "i-peer"}}}})
	if !w.done || w.wantsCloud() {
		t.Errorf("done %v, wants the cloud %v", w.done, w.wantsCloud())
	}
	if w.summary() != ": havip/havip-1 at i-peer" {
		t.Errorf("summary %q", w.summary())
	}
}
