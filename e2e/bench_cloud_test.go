package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// benchSeed puts the core rig's node (198.18.0.1) in the emulator's world.
func benchSeed() emulator.Seed {
	return emulator.NewSeedBuilder("b", "ak-bench", "sk-bench-secret").
		Instance("node", "198.18.0.1").
		Instance("other", "198.18.0.3").
		HAVIP("havip-b", "198.18.0.100", "bench", "i-other").
		Seed()
}

// inProcessEmulator serves the emulator from the peer namespace and
// reports the arrival time of every request on the returned channel.
func inProcessEmulator(b *testing.B, c coreRig) (*emulator.Emulator, string, <-chan time.Time) {
	emu, err := emulator.New(benchSeed(), emulator.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	var l net.Listener
	if err := rig.InNamespace(c.rig.Name(c.peer), func() error {
		var err error
		l, err = net.Listen("tcp", "198.18.0.2:0")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	arrivals := make(chan time.Time, 1<<16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			select {
			case arrivals <- time.Now():
			default:
			}
		}
		emu.Handler().ServeHTTP(w, r)
	})}
	// Serve ends with ErrServerClosed at the cleanup.
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { srv.Close() })
	return emu, "http://" + l.Addr().String(), arrivals
}

func cloudBenchAgent(b *testing.B, c coreRig, url string) *agentProc {
	dir := b.TempDir()
	creds := filepath.Join(dir, "credentials.toml")
	writeFile(b, creds, []byte("access_key_id = \"ak-bench\"\nsecret_access_key = \"sk-bench-secret\"\n"), 0o600)
	return newAgent(b, c.rig, c.node, fmt.Sprintf(`[cloud]
provider = "bce"
endpoint = %q
eip_endpoint = %q
metadata_endpoint = %q
credentials = %q
instance_id = "i-node"
timeout = "2s"
reconcile_interval = "10s"
confirm_timeout = "2s"

[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
havip = "havip-b"
`, url, url, url, creds))
}

// BenchmarkCloudFirstRequest measures, over 200 MASTER transitions, the
// time from the MASTER line in the FIFO to the first cloud request
// received by the emulator.
func BenchmarkCloudFirstRequest(b *testing.B) {
	const transitions = 200
	c := newCoreRig(b)
	_, url, arrivals := inProcessEmulator(b, c)
	a := cloudBenchAgent(b, c, url).quiet()
	a.start()
	events := addrEvents(b, c.rig.Name(c.node))
	f, err := os.OpenFile(a.FIFO, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cycle := masterCycle{fifo: f, events: events, pause: 5 * time.Millisecond, logs: a.logs}
	var first []time.Duration
	for i := 0; i < transitions; i++ {
		drainTimes(arrivals)
		cycle.run(b, i, func(t0 time.Time) {
			select {
			case at := <-arrivals:
				first = append(first, at.Sub(t0))
			case <-time.After(5 * time.Second):
				b.Fatalf("transition %d: no cloud request\n%s", i, a.logs())
			}
		})
	}
	report(b, "first-cloud-request", first)
}

// BenchmarkCloudSlowDoesNotDelayAnnouncements repeats the core
// measurement with the cloud enabled and every API request taking 500 ms.
func BenchmarkCloudSlowDoesNotDelayAnnouncements(b *testing.B) {
	const transitions = 200
	c := newCoreRig(b)
	emu, url, _ := inProcessEmulator(b, c)
	if _, err := emu.AddFault(emulator.Fault{Operation: "*", Kind: emulator.FaultLatency, Delay: emulator.Duration(500 * time.Millisecond), Probability: 1}); err != nil {
		b.Fatal(err)
	}
	a := cloudBenchAgent(b, c, url).quiet()
	a.start()
	events := addrEvents(b, c.rig.Name(c.node))
	frames := captureGARPs(arpCapture(b, c.rig.Name(c.peer), "eth0"))
	f, err := os.OpenFile(a.FIFO, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cycle := masterCycle{fifo: f, events: events, frames: frames, pause: 2 * time.Millisecond, logs: a.logs}
	var present, announced []time.Duration
	for i := 0; i < transitions; i++ {
		m := cycle.run(b, i, nil)
		present = append(present, m.present)
		announced = append(announced, m.announced)
	}
	report(b, "slow-cloud-vip-present", present)
	report(b, "slow-cloud-first-garp", announced)
}

func drainTimes(ch <-chan time.Time) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
