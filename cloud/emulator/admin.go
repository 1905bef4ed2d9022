package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"
)

// State is a snapshot of the emulated world.
type State struct {
	Region      string            `json:"region"`
	Time        time.Time         `json:"time"`
	ClockOffset Duration          `json:"clockOffset"`
	VPCs        []StateVPC        `json:"vpcs"`
	Subnets     []StateSubnet     `json:"subnets"`
	Instances   []StateInstance   `json:"instances"`
	RouteTables []StateRouteTable `json:"routeTables"`
	RouteRules  []StateRouteRule  `json:"routeRules"`
	HaVips      []StateHaVip      `json:"haVips"`
	EIPs        []StateEIP        `json:"eips"`
}

// StateVPC is a VPC in a State.
type StateVPC struct {
	ID   string `json:"id"`
	CIDR string `json:"cidr"`
}

// StateSubnet is a subnet in a State.
type StateSubnet struct {
	ID    string `json:"id"`
	VPCID string `json:"vpcId"`
	CIDR  string `json:"cidr"`
}

// StateInstance is an instance in a State; MAC is empty until learned from ARP.
type StateInstance struct {
	ID        string `json:"id"`
	ENIID     string `json:"eniId"`
	SubnetID  string `json:"subnetId"`
	PrivateIP string `json:"privateIp"`
	Role      string `json:"role,omitempty"`
	MAC       string `json:"mac,omitempty"`
}

// StateRouteTable is a route table in a State.
type StateRouteTable struct {
	ID    string `json:"id"`
	VPCID string `json:"vpcId"`
}

// StateRouteRule is a route rule in a State.
type StateRouteRule struct {
	ID          string `json:"id"`
	TableID     string `json:"routeTableId"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	NexthopType string `json:"nexthopType"`
	NexthopID   string `json:"nexthopId"`
	PathType    string `json:"pathType"`
	PartnerID   string `json:"partnerId,omitempty"`
}

// StateHaVip is a HAVIP in a State. Master is the instance id of the current master.
type StateHaVip struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	SubnetID  string   `json:"subnetId"`
	VPCID     string   `json:"vpcId"`
	PrivateIP string   `json:"privateIp"`
	PublicIP  string   `json:"publicIp,omitempty"`
	Status    string   `json:"status"`
	Bound     []string `json:"bound"` // instance ids in attach order
	Master    string   `json:"master,omitempty"`
	Announcer string   `json:"announcer,omitempty"`
}

// StateEIP is an EIP in a State.
type StateEIP struct {
	Address      string `json:"address"`
	ID           string `json:"id"`
	Status       string `json:"status"`
	InstanceType string `json:"instanceType,omitempty"`
	InstanceID   string `json:"instanceId,omitempty"`
}

// State answers a snapshot of the world.
func (e *Emulator) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settleLocked()
	w := e.w
	s := State{Region: w.region, Time: e.nowLocked(), ClockOffset: Duration(e.clockOffset)}
	for _, v := range w.vpcs {
		s.VPCs = append(s.VPCs, StateVPC{ID: v.id, CIDR: v.cidr.String()})
	}
	sort.Slice(s.VPCs, func(i, j int) bool { return s.VPCs[i].ID < s.VPCs[j].ID })
	for _, sn := range w.subnets {
		s.Subnets = append(s.Subnets, StateSubnet{ID: sn.id, VPCID: sn.vpcID, CIDR: sn.cidr.String()})
	}
	sort.Slice(s.Subnets, func(i, j int) bool { return s.Subnets[i].ID < s.Subnets[j].ID })
	for _, in := range w.instances {
		si := StateInstance{ID: in.id, ENIID: in.eniID, SubnetID: in.subnetID, PrivateIP: in.ip.String(), Role: in.role}
		if in.mac != nil {
			si.MAC = in.mac.String()
		}
		s.Instances = append(s.Instances, si)
	}
	sort.Slice(s.Instances, func(i, j int) bool { return s.Instances[i].ID < s.Instances[j].ID })
	for _, t := range w.tables {
		s.RouteTables = append(s.RouteTables, StateRouteTable{ID: t.id, VPCID: t.vpcID})
	}
	sort.Slice(s.RouteTables, func(i, j int) bool { return s.RouteTables[i].ID < s.RouteTables[j].ID })
	for _, r := range w.rules {
		s.RouteRules = append(s.RouteRules, StateRouteRule{ID: r.id, TableID: r.tableID, Source: r.source.String(),
			Destination: r.dest.String(), NexthopType: r.nexthopType, NexthopID: r.nexthopID, PathType: r.pathType, PartnerID: r.partnerID})
	}
	for _, h := range w.havips {
		sh := StateHaVip{ID: h.id, Name: h.name, SubnetID: h.subnetID, VPCID: h.vpcID, PrivateIP: h.ip.String(),
			PublicIP: h.publicIP, Status: h.status(), Bound: []string{}}
		for _, b := range h.bound {
			sh.Bound = append(sh.Bound, b.inst.id)
		}
		if b := h.masterBinding(); b != nil {
			sh.Master = b.inst.id
		}
		if h.announcer != nil {
			sh.Announcer = h.announcer.String()
		}
		s.HaVips = append(s.HaVips, sh)
	}
	for _, p := range w.eips {
		s.EIPs = append(s.EIPs, StateEIP{Address: p.address, ID: p.id, Status: p.status(), InstanceType: p.instanceType, InstanceID: p.instanceID})
	}
	return s
}

// HaVipMaster answers the instance id of a HAVIP's current master ("" when none).
func (e *Emulator) HaVipMaster(havipID string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.w.havip(havipID)
	if h == nil {
		return "", fmt.Errorf("havip %q does not exist", havipID)
	}
	if b := h.masterBinding(); b != nil {
		return b.inst.id, nil
	}
	return "", nil
}

// ObserveARP feeds one ARP observation (sender MAC and sender IP of a request or reply): a
// sender IP of an instance teaches its MAC; a sender IP of a HAVIP makes the bound instance with
// that MAC the HAVIP's master.
func (e *Emulator) ObserveARP(mac net.HardwareAddr, ip netip.Addr) {
	if len(mac) != 6 || !ip.Is4() {
		return
	}
	mac = append(net.HardwareAddr(nil), mac...)
	e.mu.Lock()
	defer e.mu.Unlock()
	// Most observations repeat what is known: copy the state for stale reads only when this
	// one may change it.
	changing := false
	for _, in := range e.w.instances {
		changing = changing || in.ip == ip && in.mac.String() != mac.String()
	}
	for _, h := range e.w.havips {
		changing = changing || h.ip == ip && h.announcer.String() != mac.String()
	}
	var before *world
	if changing {
		before = e.w.clone()
	}
	c := &call{op: "arp"}
	for _, in := range e.w.instances {
		if in.ip == ip && in.mac.String() != mac.String() {
			before := ""
			if in.mac != nil {
				before = in.mac.String()
			}
			in.mac = mac
			c.change(in.id, before, mac.String(), "instance %s mac %s", in.id, mac)
		}
	}
	for _, h := range e.w.havips {
		if h.ip == ip {
			h.announcer = mac
		}
	}
	for _, h := range e.w.havips {
		if old, nw, ok := masterChange(h); ok {
			c.change(h.id, old, nw, "havip %s master %s -> %s (arp from %s)", h.id, orNone(old), orNone(nw), mac)
		}
	}
	if len(c.changes) > 0 && before != nil {
		e.rememberLocked(before)
	}
	e.logChangesLocked("arp", c.changes)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func adminError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// serveAdmin serves /_emulator/{log,state,faults,clock,arp} (JSON, no authentication).
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		adminError(w, 400, "read body: %v", err)
		return
	}
	switch r.URL.Path {
	case "/_emulator/log":
		if r.Method != http.MethodGet {
			adminError(w, 405, "use GET")
			return
		}
		l := e.Log()
		if s := r.URL.Query().Get("since"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				adminError(w, 400, "since %q is not a number", s)
				return
			}
			var rq []RequestRecord
			for _, x := range l.Requests {
				if x.Seq > n {
					rq = append(rq, x)
				}
			}
			var ch []ChangeRecord
			for _, x := range l.Changes {
				if x.Seq > n {
					ch = append(ch, x)
				}
			}
			l = Log{Requests: rq, Changes: ch}
		}
		writeJSON(w, 200, l)
	case "/_emulator/state":
		writeJSON(w, 200, e.State())
	case "/_emulator/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, e.Faults())
		case http.MethodPost:
			var f Fault
			dec := json.NewDecoder(bytesReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				adminError(w, 400, "fault: %v", err)
				return
			}
			id, err := e.AddFault(f)
			if err != nil {
				adminError(w, 400, "%v", err)
				return
			}
			writeJSON(w, 200, map[string]int{"id": id})
		case http.MethodDelete:
			e.ClearFaults()
			writeJSON(w, 200, map[string]string{})
		default:
			adminError(w, 405, "use GET, POST or DELETE")
		}
	case "/_emulator/clock":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost, http.MethodPut:
			var req struct {
				Offset Duration `json:"offset"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				adminError(w, 400, "clock: %v", err)
				return
			}
			e.SetClockOffset(time.Duration(req.Offset))
		default:
			adminError(w, 405, "use GET or POST")
			return
		}
		writeJSON(w, 200, map[string]any{"offset": Duration(e.ClockOffset()), "now": e.Now()})
	case "/_emulator/arp":
		if r.Method != http.MethodPost {
			adminError(w, 405, "use POST")
			return
		}
		var req struct {
			MAC string `json:"mac"`
			IP  string `json:"ip"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			adminError(w, 400, "arp: %v", err)
			return
		}
		mac, err := net.ParseMAC(req.MAC)
		if err != nil || len(mac) != 6 {
			adminError(w, 400, "arp: mac %q is not an Ethernet address", req.MAC)
			return
		}
		ip, err := netip.ParseAddr(req.IP)
		if err != nil || !ip.Is4() {
			adminError(w, 400, "arp: ip %q is not an IPv4 address", req.IP)
			return
		}
		e.ObserveARP(mac, ip)
		writeJSON(w, 200, map[string]string{})
	default:
		adminError(w, 404, "no such admin endpoint %s", r.URL.Path)
	}
}
