package agent

import (
	"slices"
	"testing"
)

// noPriority is the priority of a line that carried none.
const noPriority = -1

// The plans of a transition, spelled out: the tests compare decide with
// these, not with the package's own lists.
var (
	becomeMaster       = []action{actBeginTerm, actPersist, actBurst, actAddAll, actCloudStart, actReport, actLog, actSync, actPhaseVIPs, actNotify}
	becomeMasterShared = []action{actBeginTerm, actPersist, actBurst, actEnsurePresent, actCloudStart, actReport, actLog, actSync, actPhaseVIPs, actNotify}
	leaveMaster        = []action{actBeginTerm, actPersist, actCloudStop, actStopAnnouncing, actRemoveAll, actReport, actLog, actSync, actNotify}
)

type decideCase struct {
	name     string
	cur      State
	in       input
	want     State
	wantActs []action
}

var decideCases = []decideCase{
	// inState: a transition.
	{"unknown to master", StateUnknown, input{kind: inState, state: StateMaster, priority: noPriority}, StateMaster, becomeMaster},
	{"backup to master", StateBackup, input{kind: inState, state: StateMaster, priority: noPriority}, StateMaster, becomeMaster},
	{"master with priority", StateBackup, input{kind: inState, state: StateMaster, priority: 100}, StateMaster, append([]action{actPriority}, becomeMaster...)},
	{"master to backup", StateMaster, input{kind: inState, state: StateBackup, priority: noPriority}, StateBackup, leaveMaster},
	{"backup with priority", StateMaster, input{kind: inState, state: StateBackup, priority: 0}, StateBackup, append([]action{actPriority}, leaveMaster...)},
	{"unknown to backup removes", StateUnknown, input{kind: inState, state: StateBackup, priority: noPriority}, StateBackup, leaveMaster},
	{"fault to stop", StateFault, input{kind: inState, state: StateStop, priority: noPriority}, StateStop, leaveMaster},
	{"master to deleted", StateMaster, input{kind: inState, state: StateDeleted, priority: noPriority}, StateDeleted, leaveMaster},
	{"restored master to backup", StateMaster, input{kind: inState, state: StateBackup, priority: noPriority, cloudReadOnly: true}, StateBackup, leaveMaster},
	// inState: the same state again.
	{"master again ensures", StateMaster, input{kind: inState, state: StateMaster, priority: noPriority}, StateMaster,
		[]action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"master again with priority", StateMaster, input{kind: inState, state: StateMaster, priority: 100}, StateMaster,
		[]action{actPriority, actEnsurePresent, actBurstIfAdded, actReport}},
	{"master again confirms a restored master", StateMaster, input{kind: inState, state: StateMaster, priority: noPriority, cloudReadOnly: true}, StateMaster,
		[]action{actEnsurePresent, actBurstIfAdded, actCloudPermit, actReport}},
	{"rx lower pri announces", StateMaster, input{kind: inState, state: StateMaster, priority: noPriority, rxLowerPri: true}, StateMaster,
		[]action{actEnsurePresent, actBurst, actReport}},
	{"rx lower pri confirms a restored master", StateMaster, input{kind: inState, state: StateMaster, priority: noPriority, rxLowerPri: true, cloudReadOnly: true}, StateMaster,
		[]action{actEnsurePresent, actBurst, actCloudPermit, actReport}},
	{"backup again ensures absent", StateBackup, input{kind: inState, state: StateBackup, priority: noPriority}, StateBackup, []action{actRemoveAll, actReport}},
	{"fault again ensures absent", StateFault, input{kind: inState, state: StateFault, priority: noPriority}, StateFault, []action{actRemoveAll, actReport}},
	// inDead.
	{"dead master faults", StateMaster, input{kind: inDead}, StateFault, leaveMaster},
	{"dead unknown faults", StateUnknown, input{kind: inDead}, StateFault, leaveMaster},
	{"dead backup faults", StateBackup, input{kind: inDead}, StateFault, leaveMaster},
	{"dead fault is quiet", StateFault, input{kind: inDead}, StateFault, nil},
	// A death taken after keepalived is back (its new process may already have reported):
	// old news, but a MASTER still steps down.
	{"dead but back: backup stays", StateBackup, input{kind: inDead, keepalivedBack: true}, StateBackup, nil},
	{"dead but back: stop stays", StateStop, input{kind: inDead, keepalivedBack: true}, StateStop, nil},
	{"dead but back: master faults", StateMaster, input{kind: inDead, keepalivedBack: true}, StateFault, leaveMaster},
	// inAddrChange.
	{"addr change master restores", StateMaster, input{kind: inAddrChange}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"addr change backup removes", StateBackup, input{kind: inAddrChange}, StateBackup, []action{actRemoveAll, actReport}},
	{"addr change fault removes", StateFault, input{kind: inAddrChange}, StateFault, []action{actRemoveAll, actReport}},
	{"addr change unknown leaves alone", StateUnknown, input{kind: inAddrChange}, StateUnknown, nil},
	// inRefresh.
	{"refresh master bursts", StateMaster, input{kind: inRefresh}, StateMaster, []action{actBurst}},
	{"refresh backup nothing", StateBackup, input{kind: inRefresh}, StateBackup, nil},
	{"refresh unknown nothing", StateUnknown, input{kind: inRefresh}, StateUnknown, nil},
	// inLinkUp.
	{"link up master announces", StateMaster, input{kind: inLinkUp}, StateMaster, []action{actEnsurePresent, actBurst, actReport}},
	{"link up backup ensures absent", StateBackup, input{kind: inLinkUp}, StateBackup, []action{actRemoveAll, actReport}},
	{"link up unknown leaves alone", StateUnknown, input{kind: inLinkUp}, StateUnknown, nil},
	// inNetRetry.
	{"add retry master ensures", StateMaster, input{kind: inNetRetry}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"retry after leaving removes", StateBackup, input{kind: inNetRetry}, StateBackup, []action{actRemoveAll, actReport}},
	{"retry while unknown is nothing", StateUnknown, input{kind: inNetRetry}, StateUnknown, nil},
	// inPriority.
	{"priority is no transition", StateMaster, input{kind: inPriority, priority: 50}, StateMaster, []action{actPriority}},
	{"priority while backup", StateBackup, input{kind: inPriority, priority: 50}, StateBackup, []action{actPriority}},
	{"priority without a value", StateMaster, input{kind: inPriority, priority: noPriority}, StateMaster, nil},
	// inCloudReady.
	{"cloud ready master claims", StateMaster, input{kind: inCloudReady}, StateMaster, []action{actCloudStart}},
	{"cloud ready restored master reads", StateMaster, input{kind: inCloudReady, cloudReadOnly: true}, StateMaster, []action{actCloudObserve}},
	{"cloud ready backup nothing", StateBackup, input{kind: inCloudReady}, StateBackup, nil},
	// inSettled, not shared: as an address change.
	{"settled master restores", StateMaster, input{kind: inSettled}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"settled unknown nothing", StateUnknown, input{kind: inSettled}, StateUnknown, nil},
	// inKeepalivedSeen.
	{"same keepalived confirms a restored master", StateMaster, input{kind: inKeepalivedSeen, sameKeepalived: true, cloudReadOnly: true}, StateMaster, []action{actCloudPermit}},
	{"same keepalived, master already confirmed", StateMaster, input{kind: inKeepalivedSeen, sameKeepalived: true}, StateMaster, nil},
	{"another keepalived confirms nothing", StateMaster, input{kind: inKeepalivedSeen, cloudReadOnly: true}, StateMaster, nil},
	{"keepalived seen while backup", StateBackup, input{kind: inKeepalivedSeen, sameKeepalived: true}, StateBackup, nil},
}

func TestDecide(t *testing.T) {
	checkDecide(t, decideCases)
}

func checkDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tt := range cases {
		got, acts := decide(tt.cur, tt.in)
		if got != tt.want || !slices.Equal(acts, tt.wantActs) {
			t.Errorf("%s: decide(%s, %+v) = %s %v; want %s %v", tt.name, tt.cur, tt.in, got, acts, tt.want, tt.wantActs)
		}
	}
}

var startCases = []struct {
	name string
	s    startup
	want []action
}{
	{"unknown does nothing", startup{state: StateUnknown}, nil},
	{"backup does nothing", startup{state: StateBackup}, nil},
	{"restored master with a state queued waits for it", startup{state: StateMaster, queued: true}, nil},
	{"restored master re-asserts and reads the cloud", startup{state: StateMaster}, []action{actEnsurePresent, actBurst, actCloudObserve, actReport}},
	{"handed over, same cloud side", startup{state: StateMaster, handover: true}, []action{actEnsurePresent, actBurst, actReport}},
	{"handed over, same cloud side, not confirmed", startup{state: StateMaster, handover: true, cloudReadOnly: true}, []action{actEnsurePresent, actBurst, actReport}},
	{"handed over, new cloud side", startup{state: StateMaster, handover: true, newCloud: true}, []action{actEnsurePresent, actBurst, actCloudStart, actReport}},
	{"handed over, new cloud side, not confirmed", startup{state: StateMaster, handover: true, newCloud: true, cloudReadOnly: true}, []action{actEnsurePresent, actBurst, actCloudObserve, actReport}},
	{"handed over with a state queued waits for it", startup{state: StateMaster, handover: true, newCloud: true, queued: true}, nil},
	{"handed over backup does nothing", startup{state: StateBackup, handover: true, newCloud: true}, nil},
}

func TestDecideStart(t *testing.T) {
	for _, tt := range startCases {
		if got := decideStart(tt.s); !slices.Equal(got, tt.want) {
			t.Errorf("%s: decideStart(%+v) = %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
}

// TestDecideTablesCoverEverything fails when an input kind or an action
// has no case in the tables: a new one comes with its cases.
func TestDecideTablesCoverEverything(t *testing.T) {
	kinds := map[inputKind]bool{}
	acts := map[action]bool{}
	for _, tt := range slices.Concat(decideCases, decideSharedCases) {
		kinds[tt.in.kind] = true
		for _, a := range tt.wantActs {
			acts[a] = true
		}
	}
	for _, tt := range startCases {
		for _, a := range tt.want {
			acts[a] = true
		}
	}
	for k := inState; k <= inKeepalivedSeen; k++ {
		if !kinds[k] {
			t.Errorf("input kind %d has no case", k)
		}
	}
	for a := actPriority; a <= actNotify; a++ {
		if !acts[a] {
			t.Errorf("action %v is in no case", a)
		}
	}
}

// TestDecidePlansAreWellFormed checks every input in every state: the
// state changes if and only if the plan begins a term, which then comes
// first (after the priority) and ends with the notification; what
// belongs to a transition comes only with one.
func TestDecidePlansAreWellFormed(t *testing.T) {
	states := []State{StateUnknown, StateMaster, StateBackup, StateFault, StateStop, StateDeleted}
	for _, cur := range states {
		for k := inState; k <= inKeepalivedSeen; k++ {
			for flags := range 1 << 5 {
				for _, st := range states {
					in := input{kind: k, state: st, priority: noPriority,
						shared: flags&1 != 0, cloudReadOnly: flags&2 != 0, sameKeepalived: flags&4 != 0, rxLowerPri: flags&8 != 0}
					if flags&16 != 0 {
						in.priority = 100
					}
					if k != inState && st != StateUnknown {
						continue // the state matters only with inState
					}
					checkPlan(t, cur, in)
				}
			}
		}
	}
}

func checkPlan(t *testing.T, cur State, in input) {
	t.Helper()
	next, acts := decide(cur, in)
	fail := func(why string) { t.Errorf("decide(%s, %+v) = %s %v: %s", cur, in, next, acts, why) }
	body := acts
	if len(body) > 0 && body[0] == actPriority {
		body = body[1:]
	}
	if slices.Contains(body, actPriority) {
		fail("the priority comes first or not at all")
	}
	begins := slices.Contains(body, actBeginTerm)
	if begins != (next != cur) {
		fail("the state changes if and only if a term begins")
	}
	if !begins {
		for _, a := range []action{actPersist, actLog, actSync, actPhaseVIPs, actNotify} {
			if slices.Contains(body, a) {
				fail(a.String() + " without a transition")
			}
		}
		return
	}
	if body[0] != actBeginTerm || body[len(body)-1] != actNotify {
		fail("a transition begins the term first and notifies last")
	}
	if body[1] != actPersist {
		fail("the record is written before any other action")
	}
	if slices.Contains(body, actPhaseVIPs) != (next == StateMaster) {
		fail("the vips_present phase is a MASTER's")
	}
}
