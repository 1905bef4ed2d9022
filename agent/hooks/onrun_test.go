package hooks

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Options.OnRun receives every run's record, with the instance, event and
// generation it ran for and how it ended, in the order of the runs: what
// the failover history keeps of a hook.
func TestOnRunReportsEveryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []Run
		f := &fakeHooks{d: time.Second}
		r := newFake(t, []Hook{execHook("h")}, Options{OnRun: func(hook string, run Run) {
			if hook != "h" {
				t.Errorf("OnRun for hook %q", hook)
			}
			mu.Lock()
			got = append(got, run)
			mu.Unlock()
		}}, f)
		for g := uint64(1); g <= 3; g++ {
			r.Fire(transition("VI_1", g, StateMaster))
		}
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 3 {
			t.Fatalf("%d runs reported, want 3: %+v", len(got), got)
		}
		for i, run := range got {
			if run.Instance != "VI_1" || run.Event != KindTransition || run.Generation != uint64(i+1) || run.Result != ResultOK || run.Duration != f.d || run.Outcome() != "ok" {
				t.Errorf("run %d: %+v (%s)", i, run, run.Outcome())
			}
		}
	})
}
