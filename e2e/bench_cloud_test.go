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
const benchSeed = `region = "bj"
[[credential]]
access_key_id = "ak-bench"
secret_access_key = "sk-bench-secret"
[[vpc]]
id = "vpc-b"
cidr = "198.18.0.0/16"
[[subnet]]
id = "sbn-b"
vpc_id = "vpc-b"
cidr = "198.18.0.0/24"
[[instance]]
id = "i-node"
eni_id = "eni-node"
subnet_id = "sbn-b"
private_ip = "198.18.0.1"
[[instance]]
id = "i-other"
eni_id = "eni-other"
subnet_id = "sbn-b"
private_ip = "198.18.0.3"
[[havip]]
id = "havip-b"
subnet_id = "sbn-b"
private_ip = "198.18.0.100"
name = "bench"
instances = ["i-other"]
`

// inProcessEmulator serves the emulator from the peer namespace and
// reports the arrival time of every request on the returned channel.
func inProcessEmulator(b *testing.B, c coreRig) (*emulator.Emulator, string, <-chan time.Time) {
	seed, err := emulator.ParseSeed(strings.NewReader(benchSeed), "bench-seed")
	if err != nil {
		b.Fatal(err)
	}
	emu, err := emulator.New(seed, emulator.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return emu, "http://" + l.Addr().String(), arrivals
}

func cloudBenchAgent(b *testing.B, c coreRig, url string) *agentProc {
	dir := b.TempDir()
	creds := filepath.Join(dir, "credentials.toml")
	os.WriteFile(creds, []byte("access_key_id = \"ak-bench\"\nsecret_access_key = \"sk-bench-secret\"\n"), 0o600)
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
	var first []time.Duration
	for i := 0; i < transitions; i++ {
		drainTimes(arrivals)
		t0 := time.Now()
		f.WriteString("INSTANCE \"VI_1\" MASTER 100\n")
		select {
		case at := <-arrivals:
			first = append(first, at.Sub(t0))
		case <-time.After(5 * time.Second):
			b.Fatalf("transition %d: no cloud request\n%s", i, a.logs())
		}
		if _, ok := waitAddr(events, vip, true, 5*time.Second); !ok {
			b.Fatal("VIP not added")
		}
		f.WriteString("INSTANCE \"VI_1\" BACKUP 100\n")
		if _, ok := waitAddr(events, vip, false, 5*time.Second); !ok {
			b.Fatal("VIP not removed")
		}
		time.Sleep(5 * time.Millisecond)
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
	var present, announced []time.Duration
	for i := 0; i < transitions; i++ {
		drainFrames(frames)
		t0 := time.Now()
		f.WriteString("INSTANCE \"VI_1\" MASTER 100\n")
		at, ok := waitAddr(events, vip, true, 5*time.Second)
		if !ok {
			b.Fatal("VIP not added")
		}
		present = append(present, at.Sub(t0))
		fr, ok := firstFrame(frames, vip, 5*time.Second)
		if !ok {
			b.Fatal("no announcement")
		}
		announced = append(announced, fr.Sub(t0))
		f.WriteString("INSTANCE \"VI_1\" BACKUP 100\n")
		if _, ok := waitAddr(events, vip, false, 5*time.Second); !ok {
			b.Fatal("VIP not removed")
		}
		time.Sleep(2 * time.Millisecond)
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
