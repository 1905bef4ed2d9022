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
		{"unknown to master", StateUnknown, input{kind: inState, state: StateMaster}, StateMaster, []action{actPersist, actBurst, actAddAll, actCloudStart}},
		{"master to backup", StateMaster, input{kind: inState, state: StateBackup}, StateBackup, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}},
		{"unknown to backup removes", StateUnknown, input{kind: inState, state: StateBackup}, StateBackup, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}},
		{"master again ensures", StateMaster, input{kind: inState, state: StateMaster}, StateMaster, []action{actEnsurePresent, actBurstIfAdded}},
		{"rx lower pri announces", StateMaster, input{kind: inState, state: StateMaster, rxLowerPri: true}, StateMaster, []action{actEnsurePresent, actBurst}},
		{"backup again ensures absent", StateBackup, input{kind: inState, state: StateBackup}, StateBackup, []action{actRemoveAll}},
		{"fault to stop", StateFault, input{kind: inState, state: StateStop}, StateStop, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}},
		{"dead master faults", StateMaster, input{kind: inDead}, StateFault, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}},
		{"dead unknown faults", StateUnknown, input{kind: inDead}, StateFault, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}},
		{"dead fault is quiet", StateFault, input{kind: inDead}, StateFault, nil},
		{"addr change master restores", StateMaster, input{kind: inAddrChange}, StateMaster, []action{actEnsurePresent, actBurstIfAdded}},
		{"addr change backup removes", StateBackup, input{kind: inAddrChange}, StateBackup, []action{actRemoveAll}},
		{"addr change unknown leaves alone", StateUnknown, input{kind: inAddrChange}, StateUnknown, nil},
		{"refresh master bursts", StateMaster, input{kind: inRefresh}, StateMaster, []action{actBurst}},
		{"refresh backup nothing", StateBackup, input{kind: inRefresh}, StateBackup, nil},
	} {
		got, acts := decide(tt.cur, tt.in)
		if got != tt.want || !reflect.DeepEqual(acts, tt.wantActs) {
			t.Errorf("%s: decide(%s, %+v) = %s %v; want %s %v", tt.name, tt.cur, tt.in, got, acts, tt.want, tt.wantActs)
		}
	}
}
