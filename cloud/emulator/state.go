package emulator

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

type credential struct {
	accessKeyID     string
	secretAccessKey string
	sessionToken    string
	expires         time.Time // zero: never
	minted          bool
}

type vpc struct {
	id     string
	cidr   netip.Prefix
	tables []string
}

type subnet struct {
	id    string
	vpcID string
	cidr  netip.Prefix
}

type instance struct {
	id       string
	eniID    string
	subnetID string
	vpcID    string
	ip       netip.Addr
	role     string
	mac      net.HardwareAddr
}

type dcGateway struct {
	id    string
	vpcID string
}

type routeTable struct {
	id    string
	vpcID string
}

// Path types of route rules.
const (
	pathNormal    = "normal"
	pathHAActive  = "ha:active"
	pathHAStandby = "ha:standby"
)

type routeRule struct {
	id          string
	tableID     string
	source      netip.Prefix
	dest        netip.Prefix
	nexthopID   string
	nexthopType string
	description string
	pathType    string
	partnerID   string // the other rule of an HA pair
}

type binding struct {
	instanceID   string // as given: an instance id (SERVER) or an ENI id (ENI)
	instanceType string // SERVER or ENI
	inst         *instance
	seq          uint64 // attach order
}

type haVip struct {
	id          string
	name        string
	description string
	subnetID    string
	vpcID       string
	ip          netip.Addr
	publicIP    string
	created     time.Time
	bound       []binding
	announcer   net.HardwareAddr // MAC that most recently announced the address
	master      string           // current master instance id (derived; kept to log changes)
}

type eip struct {
	address      string
	id           string
	name         string
	instanceType string // BCC, BBC, ENI, or eipHolderHAVIP
	instanceID   string
	created      time.Time
	// transition is eipBinding or eipUnbinding while a bind or unbind is in progress, until
	// settleAt (machine clock); "" otherwise.
	transition string
	settleAt   time.Time
}

func (h *haVip) status() string {
	if len(h.bound) > 0 {
		return "binded"
	}
	return "available"
}

// masterBinding picks the bound instance whose MAC most recently announced the HAVIP address,
// else the most recently attached one.
func (h *haVip) masterBinding() *binding {
	if len(h.bound) == 0 {
		return nil
	}
	if h.announcer != nil {
		for i := range h.bound {
			if m := h.bound[i].inst.mac; m != nil && slices.Equal(m, h.announcer) {
				return &h.bound[i]
			}
		}
	}
	best := &h.bound[0]
	for i := range h.bound {
		if h.bound[i].seq > best.seq {
			best = &h.bound[i]
		}
	}
	return best
}

func (e *eip) status() string {
	switch {
	case e.transition != "":
		return e.transition
	case e.instanceID != "":
		return eipBinded
	}
	return eipAvailable
}

// world is the whole mutable state; guarded by Emulator.mu.
type world struct {
	region    string
	vpcs      map[string]*vpc
	subnets   map[string]*subnet
	instances map[string]*instance // by id
	enis      map[string]*instance // by ENI id
	tables    map[string]*routeTable
	dcgws     map[string]*dcGateway
	rules     []*routeRule // creation order
	havips    []*haVip     // creation order
	eips      []*eip       // seed order
	seq       uint64
}

func (w *world) rule(id string) *routeRule {
	for _, r := range w.rules {
		if r.id == id {
			return r
		}
	}
	return nil
}

func (w *world) havip(id string) *haVip {
	for _, h := range w.havips {
		if h.id == id {
			return h
		}
	}
	return nil
}

func (w *world) eip(addr string) *eip {
	for _, e := range w.eips {
		if e.address == addr {
			return e
		}
	}
	return nil
}

// ipInUse reports whether addr is taken by an instance or a HAVIP.
func (w *world) ipInUse(addr netip.Addr) bool {
	for _, in := range w.instances {
		if in.ip == addr {
			return true
		}
	}
	for _, h := range w.havips {
		if h.ip == addr {
			return true
		}
	}
	return false
}

// allocateIP picks the lowest free address of the subnet, skipping the network address,
// the first (gateway) address and the broadcast address.
func (w *world) allocateIP(s *subnet) (netip.Addr, bool) {
	a := s.cidr.Masked().Addr().Next().Next()
	for ; s.cidr.Contains(a); a = a.Next() {
		if !s.cidr.Contains(a.Next()) {
			break // broadcast
		}
		if !w.ipInUse(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set", s)
	}
	return p, nil
}

func parseAddr4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}
