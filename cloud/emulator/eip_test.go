package emulator

import (
	"strings"
	"sync"
	"testing"
	"time"

	bceeip "github.com/baidubce/bce-sdk-go/services/eip"
)

// fakeClock is a machine clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func eipState(t *testing.T, emu *Emulator, addr string) StateEIP {
	t.Helper()
	for _, e := range emu.State().EIPs {
		if e.Address == addr {
			return e
		}
	}
	t.Fatalf("no EIP %s", addr)
	return StateEIP{}
}

// An instance holds at most one EIP (EIP API, Bind EIP: the instance bound to must hold no
// EIP), counting its ENI as the same holder.
func TestEIPOnePerInstance(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := eipClient(t, srv.URL)
	// 203.0.113.11 is on i-c (seed).
	for _, args := range []bceeip.BindEipArgs{{InstanceType: "BCC", InstanceId: "i-c"}, {InstanceType: "ENI", InstanceId: "eni-c"}} {
		err := c.BindEip("203.0.113.10", &args)
		wantServiceError(t, err, 400, "InstanceAlreadyBindedEip")
	}
	if err := c.BindEip("203.0.113.10", &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-d"}); err != nil {
		t.Fatal(err)
	}
	if err := c.UnBindEip("203.0.113.11", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.BindEip("203.0.113.11", &bceeip.BindEipArgs{InstanceType: "ENI", InstanceId: "eni-c"}); err != nil {
		t.Fatalf("bind after the instance's EIP was unbound: %v", err)
	}
	// A seed may not give one instance two EIPs either.
	_, _, err := seedWith(t, "", "[[eip]]\naddress = \"203.0.113.12\"\ninstance_id = \"i-c\"\n")
	if err == nil || !strings.Contains(err.Error(), "already holds eip 203.0.113.11") {
		t.Fatalf("seed with two EIPs on i-c: %v", err)
	}
}

// Binds and unbinds are asynchronous when the seed or a transition fault says so: the EIP is
// binding (shown with its new instance) or unbinding (shown with its old one) until the delay
// has passed; meanwhile another bind or unbind is refused; the end is logged as eip.settle.
// Without either, nothing changes (no delay).
func TestEIPTransitions(t *testing.T) {
	// Signatures are checked against this clock too: it starts at the machine clock.
	clk := &fakeClock{t: time.Now()}
	emu, srv, err := seedWithOptions(t, `eip_transition = "2s"`, "", Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	c := eipClient(t, srv.URL)
	const addr = "203.0.113.11" // on i-c
	if err := c.UnBindEip(addr, "tok-u"); err != nil {
		t.Fatal(err)
	}
	if e := eipState(t, emu, addr); e.Status != "unbinding" || e.InstanceID != "i-c" {
		t.Fatalf("after unbind: %+v, want unbinding, still i-c", e)
	}
	l, err := c.ListEip(&bceeip.ListEipArgs{Eip: addr})
	if err != nil || l.EipList[0].Status != "unbinding" || l.EipList[0].InstanceId != "i-c" {
		t.Fatalf("list during unbinding: %+v %v", l, err)
	}
	err = c.BindEip(addr, &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-d"})
	wantServiceError(t, err, 400, "EipStatusNotAvailable")
	err = c.UnBindEip(addr, "tok-u2")
	wantServiceError(t, err, 400, "EipStatusNotAvailable")
	clk.add(2 * time.Second)
	if e := eipState(t, emu, addr); e.Status != "available" || e.InstanceID != "" {
		t.Fatalf("after the delay: %+v, want available", e)
	}
	if err := c.BindEip(addr, &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-d"}); err != nil {
		t.Fatal(err)
	}
	if e := eipState(t, emu, addr); e.Status != "binding" || e.InstanceID != "i-d" {
		t.Fatalf("after bind: %+v, want binding to i-d", e)
	}
	clk.add(time.Second)
	if e := eipState(t, emu, addr); e.Status != "binding" {
		t.Fatalf("before the delay: %+v, want still binding", e)
	}
	clk.add(time.Second)
	if e := eipState(t, emu, addr); e.Status != "binded" || e.InstanceID != "i-d" {
		t.Fatalf("after the delay: %+v, want binded to i-d", e)
	}
	var settled []string
	for _, ch := range emu.Changes() {
		if ch.Operation == OpEIPSettle {
			settled = append(settled, ch.Message)
		}
	}
	if len(settled) != 2 || !strings.Contains(settled[0], "unbound from i-c") || !strings.Contains(settled[1], "bound to BCC i-d") {
		t.Fatalf("settle changes %q", settled)
	}

	// A transition fault delays one request; the default is no delay.
	emu2, srv2 := newTest(t, Options{Now: clk.now})
	c2 := eipClient(t, srv2.URL)
	if err := c2.BindEip("203.0.113.10", &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-d"}); err != nil {
		t.Fatal(err)
	}
	if e := eipState(t, emu2, "203.0.113.10"); e.Status != "binded" {
		t.Fatalf("no delay by default: %+v", e)
	}
	if _, err := emu2.AddFault(Fault{Operation: OpEIPUnbind, Kind: FaultTransition, Delay: Duration(5 * time.Second), Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c2.UnBindEip("203.0.113.10", ""); err != nil {
		t.Fatal(err)
	}
	if e := eipState(t, emu2, "203.0.113.10"); e.Status != "unbinding" {
		t.Fatalf("transition fault: %+v, want unbinding", e)
	}
	clk.add(5 * time.Second)
	if e := eipState(t, emu2, "203.0.113.10"); e.Status != "available" {
		t.Fatalf("after the fault's delay: %+v", e)
	}
	if _, _, err := seedWith(t, `eip_transition = "soon"`, ""); err == nil || !strings.Contains(err.Error(), "eip_transition") {
		t.Fatalf("bad eip_transition: %v", err)
	}
}
