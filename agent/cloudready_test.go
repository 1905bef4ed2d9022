package agent

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/havip-agent/havip-agent/cloud"
)

// watchingCloud is a fakeCloud that records what it is told to watch.
type watchingCloud struct {
	*fakeCloud
	mu      sync.Mutex
	watched [][]string
}

func (w *watchingCloud) Watch(rs []cloud.Resource) {
	var keys []string
	for _, r := range rs {
		keys = append(keys, r.Key())
	}
	w.mu.Lock()
	w.watched = append(w.watched, keys)
	w.mu.Unlock()
}

func (w *watchingCloud) last() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.watched) == 0 {
		return nil
	}
	return w.watched[len(w.watched)-1]
}

// A provider that keeps a picture of its resources is told which ones the configuration names
// when it is ready (built in the background, or given) and again after every reload, so that a
// resource a reload adds is watched and one it removes is no longer read.
func TestCloudWatcherFollowsTheConfiguration(t *testing.T) {
	base := reloadConfig(t, testConfig(t), twoInstances)
	p := &watchingCloud{fakeCloud: &fakeCloud{owner: "i-other"}}
	ready := make(chan struct{})
	setup := func(context.Context) (cloud.Provider, func(context.Context), error) { return p, nil, nil }
	d, err := New(Options{Config: base, Logger: discard(), Network: newFakeNet("eth0"), CloudSetup: setup, BootID: "b", Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-ready
	if !eventually(func() bool { return slices.Equal(p.last(), []string{"havip/havip-1"}) }) {
		t.Fatalf("watched %v after set-up, want the configured HAVIP", p.last())
	}
	next := reloadConfig(t, base, `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
havip = "havip-2"
[[instance.route]]
table = "rt-1"
destination = "198.19.0.0/24"
mode = "update"
`)
	if err := d.ApplyConfig(next); err != nil {
		t.Fatal(err)
	}
	want := []string{"havip/havip-2", "route/rt-1/198.19.0.0/24"}
	if got := p.last(); !slices.Equal(got, want) {
		t.Fatalf("watched %v after the reload, want %v", got, want)
	}
}
