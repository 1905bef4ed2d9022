package bce

import (
	"context"
	"strings"
	"testing"
	"time"

	sdkeip "github.com/baidubce/bce-sdk-go/services/eip"

	sdk "github.com/baidubce/bce-sdk-go/bce"

	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/emulator"
)

func eipRes(addr string) cloud.Resource {
	return cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: addr}}
}

func addFaults(t *testing.T, emu *emulator.Emulator, fs ...emulator.Fault) {
	t.Helper()
	for _, f := range fs {
		if _, err := emu.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
}

func stateEIP(t *testing.T, emu *emulator.Emulator, addr string) emulator.StateEIP {
	t.Helper()
	for _, e := range emu.State().EIPs {
		if e.Address == addr {
			return e
		}
	}
	t.Fatalf("no EIP %s in the emulator", addr)
	return emulator.StateEIP{}
}

// checkOnce checks that every request of op carried token and exactly one was applied.
func checkOnce(t *testing.T, emu *emulator.Emulator, op, token string, wantRequests int) []emulator.RequestRecord {
	t.Helper()
	rs := emuOps(emu, op)
	applied := 0
	for _, r := range rs {
		if r.ClientToken != token {
			t.Errorf("%s request with token %q, want %q", op, r.ClientToken, token)
		}
		if r.Applied {
			applied++
		}
	}
	if len(rs) != wantRequests || applied != 1 {
		t.Fatalf("%s requests %+v: want %d, exactly one applied", op, rs, wantRequests)
	}
	return rs
}

// The EIP moves from i-b to this BBC node although the unbind's answer is lost and the bind
// fails twice: each step is retried with its own token and applied once.
func TestEmulatorEIPMoveUnderFaults(t *testing.T) {
	emu, c, _ := newEmulator(t, func(o *Options) { o.InstanceType = "BBC" })
	addFaults(t, emu,
		emulator.Fault{Operation: emulator.OpEIPUnbind, Kind: emulator.FaultLost, Count: 1},
		emulator.Fault{Operation: emulator.OpEIPBind, Kind: emulator.FaultError, Status: 500, Count: 1},
		emulator.Fault{Operation: emulator.OpEIPBind, Kind: emulator.FaultError, Status: 503, Count: 1},
	)
	o, err := c.Claim(context.Background(), eipRes("198.19.0.10"), tokenBase)
	if err != nil || !o.Owned || o.Current != "i-a" {
		t.Fatalf("Claim = %+v, %v; want the EIP on i-a", o, err)
	}
	un := checkOnce(t, emu, emulator.OpEIPUnbind, cloud.Token(tokenBase, "eip.unbind/i-b"), 2)
	if !un[1].Replayed {
		t.Errorf("the retried unbind was not answered from the clientToken cache: %+v", un[1])
	}
	checkOnce(t, emu, emulator.OpEIPBind, cloud.Token(tokenBase, "eip.bind/i-a"), 3)
	if e := stateEIP(t, emu, "198.19.0.10"); e.InstanceType != "BBC" || e.InstanceID != "i-a" {
		t.Fatalf("EIP state %+v, want bound to BBC i-a", e)
	}
	// Owned now: a later claim sends nothing.
	n := len(emu.Requests())
	if _, err := c.Claim(context.Background(), eipRes("198.19.0.10"), "gen-2/eip"); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests()[n:] {
		if r.Method != "GET" {
			t.Fatalf("a claim of an owned EIP sent %+v", r)
		}
	}
}

// An unbind that landed followed by a bind that kept failing leaves the EIP free; the next
// claim (a new token base) only binds.
func TestEmulatorEIPBindFailsNextClaimCompletes(t *testing.T) {
	emu, c, _ := newEmulator(t, func(o *Options) { o.MaxAttempts = 2 })
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpEIPBind, Kind: emulator.FaultError, Status: 500, Count: 2})
	_, err := c.Claim(context.Background(), eipRes("198.19.0.10"), tokenBase)
	if err == nil || !cloud.IsRetryable(err) {
		t.Fatalf("Claim err = %v; want a retryable failure of the bind", err)
	}
	if e := stateEIP(t, emu, "198.19.0.10"); e.InstanceID != "" {
		t.Fatalf("EIP state %+v, want unbound", e)
	}
	o, err := c.Claim(context.Background(), eipRes("198.19.0.10"), "gen-1/eip/2")
	if err != nil || !o.Owned {
		t.Fatalf("second Claim = %+v, %v", o, err)
	}
	if n := len(emuOps(emu, emulator.OpEIPUnbind)); n != 1 {
		t.Fatalf("%d unbinds, want the first claim's only", n)
	}
	binds := emuOps(emu, emulator.OpEIPBind)
	if len(binds) != 3 || binds[2].ClientToken != cloud.Token("gen-1/eip/2", "eip.bind/i-a") || !binds[2].Applied {
		t.Fatalf("bind requests %+v: want two failures, then the second claim's bind applied", binds)
	}
	if e := stateEIP(t, emu, "198.19.0.10"); e.InstanceType != "BCC" || e.InstanceID != "i-a" {
		t.Fatalf("EIP state %+v, want bound to BCC i-a", e)
	}
}

func TestEmulatorHAVIPPublicIP(t *testing.T) {
	emu, c, _ := newEmulator(t, nil)
	ctx := context.Background()
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpHaVipBindPublicIP, Kind: emulator.FaultLost, Count: 1})
	r := havipPublicRes("havip-1", "198.19.0.20")
	o, err := c.Claim(ctx, r, tokenBase)
	if err != nil || !o.Owned || o.PublicIP != "198.19.0.20" || o.PublicIPProblem != "" {
		t.Fatalf("Claim = %+v, %v; want owned with public IP 198.19.0.20", o, err)
	}
	checkOnce(t, emu, emulator.OpHaVipBindPublicIP, cloud.Token(tokenBase, "havip.bindPublicIp/198.19.0.20"), 2)
	if e := stateEIP(t, emu, "198.19.0.20"); e.InstanceType != "HAVIP" || e.InstanceID != "havip-1" {
		t.Fatalf("EIP state %+v", e)
	}
	n := len(emu.Requests())
	if o, err := c.Claim(ctx, r, "gen-2/havip"); err != nil || !o.Owned || o.PublicIPBindable {
		t.Fatalf("second Claim = %+v, %v", o, err)
	}
	for _, q := range emu.Requests()[n:] {
		if q.Method != "GET" {
			t.Fatalf("a claim of a complete HAVIP sent %+v", q)
		}
	}

	// Another public IP wanted: reported, never changed; the HAVIP stays ours.
	o, err = c.Observe(ctx, havipPublicRes("havip-1", "198.19.0.30"))
	if err != nil || !o.Owned || o.PublicIP != "198.19.0.20" || o.PublicIPBindable || !strings.Contains(o.PublicIPProblem, "holds public IP 198.19.0.20, not 198.19.0.30") {
		t.Fatalf("Observe = %+v, %v", o, err)
	}
	if _, err := c.Claim(ctx, havipPublicRes("havip-1", "198.19.0.30"), "gen-3/havip"); err != nil {
		t.Fatal(err)
	}
	if len(emuOps(emu, emulator.OpHaVipUnbindPublic)) != 0 || len(emuOps(emu, emulator.OpHaVipBindPublicIP)) != 2 {
		t.Fatal("a claim changed a HAVIP holding another public IP")
	}

	rep := c.Preflight(ctx, []cloud.Resource{havipPublicRes("havip-1", "198.19.0.30"), havipPublicRes("havip-1", "198.19.0.20")})
	s := rep.String()
	if !strings.Contains(s, "FAIL  havip/havip-1/public-ip  HAVIP havip-1 holds public IP 198.19.0.20, not 198.19.0.30") ||
		!strings.Contains(s, "ok    havip/havip-1/public-ip  holds public IP 198.19.0.20") {
		t.Fatalf("preflight:\n%s", s)
	}
}

// The operation names reported to OnRequest are the emulator's, and the codes its answers (the
// codes outside the fixed set as "other").
func TestEmulatorOnRequestNames(t *testing.T) {
	var l requestLog
	emu, c, _ := newEmulator(t, func(o *Options) { o.OnRequest = l.add })
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpRouteRuleSwitch, Kind: emulator.FaultError, Status: 503, Count: 1})
	ctx := context.Background()
	for _, r := range []cloud.Resource{havipPublicRes("havip-1", "198.19.0.20"), haRes("dcgw-a", ""),
		routeRes("rt-1", "10.9.0.0/16", ""), eipRes("198.19.0.10")} {
		if _, err := c.Claim(ctx, r, tokenBase+"/"+r.Key()); err != nil {
			t.Fatalf("Claim(%s): %v", r, err)
		}
	}
	var want []string
	for _, r := range emu.Requests() {
		code := r.Code
		switch {
		case code == "":
			code = CodeOK
		case !cloud.KnownCode(code):
			code = CodeOther
		}
		want = append(want, r.Operation+" "+code)
	}
	got := l.list()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("OnRequest calls:\n%s\nemulator requests:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[strings.Fields(g)[0]] = true
	}
	for _, op := range []string{OpHAVIPDetail, OpHAVIPAttach, OpHAVIPBindPublicIP, OpRouteRuleList, OpRouteRuleSwitch,
		OpRouteRuleUpdate, OpEIPList, OpEIPUnbind, OpEIPBind} {
		if !seen[op] {
			t.Errorf("no %s request reported", op)
		}
	}
}

// waitOptions lets the read-backs wait long enough for the emulator's EIP transitions (no
// timing is asserted: the budget only has to cover them).
func waitOptions(o *Options) {
	o.MinBackoff, o.MaxBackoff, o.ConfirmAttempts = 20*time.Millisecond, 20*time.Millisecond, 100
}

// EIP binds and unbinds are asynchronous: the claim waits for the unbind to finish before it
// binds (never sending a bind the API would refuse) and confirms only once the bind has finished.
func TestEmulatorEIPAsynchronous(t *testing.T) {
	emu, c, _ := newEmulatorSeed(t, "eip_transition = \"150ms\"\n"+emuSeed, waitOptions)
	o, err := c.Claim(context.Background(), eipRes("198.19.0.10"), tokenBase)
	if err != nil || !o.Owned || o.Current != "i-a" {
		t.Fatalf("Claim = %+v, %v; want the EIP on i-a", o, err)
	}
	if e := stateEIP(t, emu, "198.19.0.10"); e.Status != "binded" || e.InstanceID != "i-a" {
		t.Fatalf("EIP %+v, want binded to i-a", e)
	}
	checkOnce(t, emu, emulator.OpEIPUnbind, cloud.Token(tokenBase, "eip.unbind/i-b"), 1)
	checkOnce(t, emu, emulator.OpEIPBind, cloud.Token(tokenBase, "eip.bind/i-a"), 1)
	// While binding the EIP names this node but is not owned yet.
	emu2, c2, _ := newEmulatorSeed(t, "eip_transition = \"1m\"\n"+emuSeed, nil)
	o, err = c2.Claim(context.Background(), eipRes("198.19.0.20"), tokenBase)
	if o.Owned || err == nil || o.Current != "i-a" || !strings.Contains(o.Detail, "status binding") {
		t.Fatalf("Claim during a long bind = %+v, %v; want not owned yet, binding to i-a", o, err)
	}
	if n := len(emuOps(emu2, emulator.OpEIPBind)); n != 1 {
		t.Fatalf("%d binds, want 1", n)
	}
	// A later claim sees it binding and sends nothing.
	if _, err := c2.Claim(context.Background(), eipRes("198.19.0.20"), "gen-2/eip"); err == nil {
		t.Fatal("claim of an EIP still binding succeeded")
	}
	if n := len(emuOps(emu2, emulator.OpEIPBind)); n != 1 {
		t.Fatalf("%d binds after a claim of a binding EIP, want 1", n)
	}
}

// A bind tried while an unbind is still in progress (a read that lagged showed the EIP
// available) is refused by the API; the claim reads again, waits for the unbind to finish and
// binds once more under a token of its own.
func TestEmulatorEIPBindDuringUnbinding(t *testing.T) {
	emu, c, url := newEmulator(t, waitOptions)
	// 198.19.0.20 is free; another node binds it, then someone starts unbinding it, slowly.
	ec := sdkEIP(t, url)
	if err := ec.BindEip("198.19.0.20", &sdkeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-lo"}); err != nil {
		t.Fatal(err)
	}
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpEIPUnbind, Kind: emulator.FaultTransition, Delay: emulator.Duration(300 * time.Millisecond), Count: 1})
	if err := ec.UnBindEip("198.19.0.20", ""); err != nil {
		t.Fatal(err)
	}
	// The claim's first reads answer from before the bind: available.
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpEIPList, Kind: emulator.FaultStale, Mutations: 2, Count: 2})
	o, err := c.Claim(context.Background(), eipRes("198.19.0.20"), tokenBase)
	if err != nil || !o.Owned || o.Current != "i-a" {
		t.Fatalf("Claim = %+v, %v; want the EIP on i-a", o, err)
	}
	binds := emuOps(emu, emulator.OpEIPBind)
	if len(binds) != 3 || binds[1].Code != "EipStatusNotAvailable" || binds[1].ClientToken != cloud.Token(tokenBase, "eip.bind/i-a") ||
		binds[2].Status != 200 || binds[2].ClientToken != cloud.Token(tokenBase, "eip.bind/i-a/after-unbinding") {
		t.Fatalf("binds %+v: want the test's, one refused while unbinding, then one applied under its own token", binds)
	}
}

// sdkEIP is the SDK's own EIP client against the emulator, for setting the scene.
func sdkEIP(t *testing.T, url string) *sdkeip.Client {
	t.Helper()
	c, err := sdkeip.NewClient("ak-test", "sk-test", url)
	if err != nil {
		t.Fatal(err)
	}
	c.Config.Retry = sdk.NewNoRetryPolicy()
	return c
}
