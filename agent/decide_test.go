package agent

import (
	"reflect"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cur      State
		in       input
		want     State
		wantActs []action
	}{
		{"unknown to master", StateUnknown, input{kind: inState, state: StateMaster}, StateMaster, []action{actPersist, actBurst, actAddAll, actCloudStart, actReport, actLog, actSync}},
		{"master to backup", StateMaster, input{kind: inState, state: StateBackup}, StateBackup, leave},
		{"unknown to backup removes", StateUnknown, input{kind: inState, state: StateBackup}, StateBackup, leave},
		{"master again ensures", StateMaster, input{kind: inState, state: StateMaster}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actCloudPermit, actReport}},
		{"rx lower pri announces", StateMaster, input{kind: inState, state: StateMaster, rxLowerPri: true}, StateMaster, []action{actEnsurePresent, actBurst, actCloudPermit, actReport}},
		{"backup again ensures absent", StateBackup, input{kind: inState, state: StateBackup}, StateBackup, []action{actRemoveAll, actReport}},
		{"fault to stop", StateFault, input{kind: inState, state: StateStop}, StateStop, leave},
		{"dead master faults", StateMaster, input{kind: inDead}, StateFault, leave},
		{"dead unknown faults", StateUnknown, input{kind: inDead}, StateFault, leave},
		{"dead fault is quiet", StateFault, input{kind: inDead}, StateFault, nil},
		{"addr change master restores", StateMaster, input{kind: inAddrChange}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
		{"addr change backup removes", StateBackup, input{kind: inAddrChange}, StateBackup, []action{actRemoveAll, actReport}},
		{"addr change unknown leaves alone", StateUnknown, input{kind: inAddrChange}, StateUnknown, nil},
		{"refresh master bursts", StateMaster, input{kind: inRefresh}, StateMaster, []action{actBurst}},
		{"refresh backup nothing", StateBackup, input{kind: inRefresh}, StateBackup, nil},
		{"link up master announces", StateMaster, input{kind: inLinkUp}, StateMaster, []action{actEnsurePresent, actBurst, actReport}},
		{"link up backup ensures absent", StateBackup, input{kind: inLinkUp}, StateBackup, []action{actRemoveAll, actReport}},
		{"link up unknown leaves alone", StateUnknown, input{kind: inLinkUp}, StateUnknown, nil},
		{"add retry master ensures", StateMaster, input{kind: inNetRetry}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
		{"retry after leaving removes", StateBackup, input{kind: inNetRetry}, StateBackup, []action{actRemoveAll, actReport}},
		{"retry while unknown is nothing", StateUnknown, input{kind: inNetRetry}, StateUnknown, nil},
		{"priority is no transition", StateMaster, input{kind: inPriority, priority: 50}, StateMaster, nil},
		{"cloud ready master resumes", StateMaster, input{kind: inCloudReady}, StateMaster, []action{actCloudResume}},
		{"cloud ready backup nothing", StateBackup, input{kind: inCloudReady}, StateBackup, nil},
		{"same keepalived confirms a master", StateMaster, input{kind: inKeepalivedSeen, sameKeepalived: true}, StateMaster, []action{actCloudPermit}},
		{"another keepalived confirms nothing", StateMaster, input{kind: inKeepalivedSeen}, StateMaster, nil},
		{"keepalived seen while backup", StateBackup, input{kind: inKeepalivedSeen, sameKeepalived: true}, StateBackup, nil},
	} {
		got, acts := decide(tt.cur, tt.in)
		if got != tt.want || !reflect.DeepEqual(acts, tt.wantActs) {
			t.Errorf("%s: decide(%s, %+v) = %s %v; want %s %v", tt.name, tt.cur, tt.in, got, acts, tt.want, tt.wantActs)
		}
	}
}

func TestHandedOver(t *testing.T) {
	for _, tt := range []struct {
		name               string
		newCloud, readOnly bool
		want               []action
	}{
		{"same cloud side", false, false, []action{actEnsurePresent, actBurst, actReport}},
		{"new cloud side", true, false, []action{actEnsurePresent, actBurst, actCloudStart, actReport}},
		{"new cloud side, not confirmed", true, true, []action{actEnsurePresent, actBurst, actCloudObserve, actReport}},
	} {
		if got := handedOver(tt.newCloud, tt.readOnly); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
