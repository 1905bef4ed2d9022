package agent

import (
	"os"
	"testing"
	"time"
)

func TestStoreRoundTripAndDamage(t *testing.T) {
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if _, ok, err := st.load("instance", "VI_1"); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	long := record{Kind: "instance", Name: "VI_1", State: StateMaster, Generation: 123456789, Since: time.Now().UTC()}
	short := record{Kind: "instance", Name: "VI_1", State: StateFault, Generation: 2}
	for _, want := range []record{long, short} {
		if err := st.save(want); err != nil {
			t.Fatal(err)
		}
		if err := st.sync(want.Kind, want.Name); err != nil {
			t.Fatal(err)
		}
		got, ok, err := st.load("instance", "VI_1")
		if err != nil || !ok || got.State != want.State || got.Generation != want.Generation {
			t.Errorf("load = %+v %v %v, want %+v", got, ok, err, want)
		}
	}
	// A torn write (a crash in the middle) must read as damaged, not as
	// some other state.
	b, _ := os.ReadFile(st.path("instance", "VI_1"))
	if err := os.WriteFile(st.path("instance", "VI_1"), b[:20], 0o640); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.load("instance", "VI_1"); ok || err == nil {
		t.Errorf("torn record loaded: ok %v err %v", ok, err)
	}
}
