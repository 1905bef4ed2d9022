package rig

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// NewSeed is the emulator's world for the rig: both nodes, a HAVIP for
// the VIP bound to both, and an HA route pair (n1 active) for a
// destination outside the VPC. The pair's next hops are the nodes'
// dedicated-line gateways, the only next hops the cloud takes in a pair.
// Tests that need more add it to the builder.
func NewSeed() *emulator.SeedBuilder {
	return emulator.NewSeedBuilder("rig", "ak-rig", "sk-rig-secret").
		Instance("n1", "198.18.0.11").
		Instance("n2", "198.18.0.12").
		DCGateway("dcgw-n1").
		DCGateway("dcgw-n2").
		RouteTable("rt-rig").
		RouteRule(emulator.SeedRouteRule{
			ID: "rr-a", RouteTableID: "rt-rig", Destination: Destination,
			NextHopType: "dcGateway", NextHopID: "dcgw-n1",
			StandbyID: "rr-b", StandbyNextHopID: "dcgw-n2",
		}).
		HAVIP("havip-rig", VIP, "rig", "i-n1", "i-n2")
}

// Seed is the rig's world (NewSeed) as a seed file.
var Seed = NewSeed().TOML()

// Emulator is bce-emulator running in the switch namespace, learning ARP
// on the bridge.
type Emulator struct {
	URL  string
	Proc *Process
	h    *HA
	hc   *http.Client
}

// StartEmulator runs the emulator with seed (Seed when empty).
func (h *HA) StartEmulator(seed string, extraArgs ...string) (*Emulator, error) {
	if seed == "" {
		seed = Seed
	}
	path := filepath.Join(h.Dir, "seed.toml")
	if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
		return nil, err
	}
	args := append([]string{h.Bins.Emulator, "-listen", SwitchIP + ":0", "-seed", path, "-learn-arp", "br0"}, extraArgs...)
	cmd := h.NS.Command("sw", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := startProcess(cmd, nil)
	if err != nil {
		return nil, err
	}
	e := &Emulator{Proc: p, h: h, hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: h.DialIn("sw")}}}
	h.emu = e
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "http://"); i >= 0 {
				urlCh <- strings.Fields(sc.Text()[i:])[0]
			}
		}
		// Drained so the emulator never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case e.URL = <-urlCh:
		return e, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("emulator did not print its URL:\n%s", p.Output())
	}
}

// Admin reads (or, with a body, posts to) an admin endpoint.
func (e *Emulator) Admin(path string, body any, v any) error {
	var resp *http.Response
	var err error
	if body != nil {
		b, _ := json.Marshal(body)
		resp, err = e.hc.Post(e.URL+path, "application/json", strings.NewReader(string(b)))
	} else {
		resp, err = e.hc.Get(e.URL + path)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w: %s", path, err, b)
	}
	return nil
}

// State is the emulator's world now.
func (e *Emulator) State() (emulator.State, error) {
	var s emulator.State
	err := e.Admin("/_emulator/state", nil, &s)
	return s, err
}

// Log is the emulator's request and change log.
func (e *Emulator) Log() (emulator.Log, error) {
	var l emulator.Log
	err := e.Admin("/_emulator/log", nil, &l)
	return l, err
}

// ActiveNextHop is the next hop of the active rule of the rig's HA pair: a
// node's gateway.
func ActiveNextHop(s emulator.State) string {
	for _, r := range s.RouteRules {
		if r.Destination == Destination && r.PathType == "ha:active" {
			return r.NexthopID
		}
	}
	return ""
}

// RouteHolder is the instance of the node whose gateway is the active next
// hop of the rig's HA pair, "" for none.
func RouteHolder(s emulator.State) string {
	return InstanceOfGateway(ActiveNextHop(s))
}

// InstanceOfGateway is the instance of the rig node whose gateway is gw, ""
// for none.
func InstanceOfGateway(gw string) string {
	if id, ok := strings.CutPrefix(gw, "dcgw-"); ok {
		return "i-" + id
	}
	return ""
}

// HAVIPMaster is the rig HAVIP's master.
func HAVIPMaster(s emulator.State) string {
	for _, h := range s.HaVips {
		if h.ID == "havip-rig" {
			return h.Master
		}
	}
	return ""
}

// Switches counts the HA route switches the emulator applied.
func Switches(l emulator.Log) int {
	n := 0
	for _, c := range l.Changes {
		if c.Operation == emulator.OpRouteRuleSwitch {
			n++
		}
	}
	return n
}

// CloudConfig is the [cloud] section and the VI_1 instance of a node's
// agent configuration, pointed at the emulator; extra goes into the
// instance.
func (n *Node) CloudConfig(e *Emulator, extra string) (string, error) {
	creds := filepath.Join(n.Dir, "credentials.toml")
	if err := os.WriteFile(creds, []byte("access_key_id = \"ak-rig\"\nsecret_access_key = \"sk-rig-secret\"\n"), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf(`
[cloud]
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
destination = %q
next_hop = %q
next_hop_type = "dcGateway"
`, e.URL, e.URL, e.URL, creds, VIP, extra, Destination, n.Gateway), nil
}
