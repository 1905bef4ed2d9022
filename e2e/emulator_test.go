package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// rigSeed is the emulator's world for the HA rig: both nodes, a HAVIP for
// the VIP bound to both, and an HA route pair (n1 active) for a
// destination outside the VPC.
const rigSeed = `region = "bj"

[[credential]]
access_key_id = "ak-rig"
secret_access_key = "sk-rig-secret"

[[vpc]]
id = "vpc-rig"
cidr = "198.18.0.0/16"

[[subnet]]
id = "sbn-rig"
vpc_id = "vpc-rig"
cidr = "198.18.0.0/24"

[[instance]]
id = "i-n1"
eni_id = "eni-n1"
subnet_id = "sbn-rig"
private_ip = "198.18.0.11"

[[instance]]
id = "i-n2"
eni_id = "eni-n2"
subnet_id = "sbn-rig"
private_ip = "198.18.0.12"

[[route_table]]
id = "rt-rig"
vpc_id = "vpc-rig"

[[route_rule]]
id = "rr-a"
route_table_id = "rt-rig"
source = "0.0.0.0/0"
destination = "198.19.0.0/24"
next_hop_type = "custom"
next_hop_id = "i-n1"
standby_id = "rr-b"
standby_next_hop_id = "i-n2"

[[havip]]
id = "havip-rig"
subnet_id = "sbn-rig"
private_ip = "198.18.0.100"
name = "rig"
instances = ["i-n1", "i-n2"]
`

// emulatorProc is bce-emulator running in the switch namespace.
type emulatorProc struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (h *haRig) startEmulator(extraArgs ...string) *emulatorProc {
	h.t.Helper()
	dir := h.t.TempDir()
	seed := filepath.Join(dir, "seed.toml")
	if err := os.WriteFile(seed, []byte(rigSeed), 0o600); err != nil {
		h.t.Fatal(err)
	}
	args := append([]string{binary(h.t, "bce-emulator"), "-listen", "198.18.0.1:0", "-seed", seed, "-learn-arp", "br0"}, extraArgs...)
	cmd := h.rig.Command("sw", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	e := &emulatorProc{cmd: cmd, done: make(chan struct{})}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "http://"); i >= 0 {
				urlCh <- strings.Fields(sc.Text()[i:])[0]
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { cmd.Wait(); close(e.done) }()
	h.t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	select {
	case e.url = <-urlCh:
	case <-time.After(10 * time.Second):
		h.t.Fatal("emulator did not print its URL")
	}
	return e
}

// admin reads an emulator admin endpoint. The emulator listens inside the
// switch namespace, so the request is made from there.
func (h *haRig) admin(e *emulatorProc, path string, v any) {
	h.t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		// The socket is created inside the switch namespace; the
		// connection then works from any goroutine.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := inNamespace(h.rig.Name("sw"), func() error {
				var err error
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	resp, err := c.Get(e.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		h.t.Fatalf("%s: %v: %s", path, err, body)
	}
}

func (h *haRig) emuState(e *emulatorProc) emulator.State {
	var s emulator.State
	h.admin(e, "/_emulator/state", &s)
	return s
}

func (h *haRig) emuLog(e *emulatorProc) emulator.Log {
	var l emulator.Log
	h.admin(e, "/_emulator/log", &l)
	return l
}

// cloudConfig is the [cloud] section and instance of a node's agent.
func (h *haRig) cloudAgentConfig(n *haNode, e *emulatorProc, extra string) string {
	creds := filepath.Join(n.dir, "credentials.toml")
	if err := os.WriteFile(creds, []byte("access_key_id = \"ak-rig\"\nsecret_access_key = \"sk-rig-secret\"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return fmt.Sprintf(`[cloud]
provider = "bce"
region = "bj"
endpoint = %q
eip_endpoint = %q
metadata_endpoint = %q
credentials = %q
timeout = "2s"
reconcile_interval = "1s"
reclaim_max_backoff = "4s"
confirm_timeout = "5s"

[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["%s/24"]
garp_count = 3
garp_interval = "100ms"
havip = "havip-rig"
%s
[[instance.route]]
table = "rt-rig"
destination = "198.19.0.0/24"
`, e.url, e.url, e.url, creds, rigVIP, extra)
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
