package cloud

import (
	"context"
	"net/netip"
	"strings"
)

// Kind is the kind of a cloud resource.
type Kind string

// The kinds of resource the agent claims.
const (
	KindHAVIP Kind = "havip"
	KindRoute Kind = "route"
	KindEIP   Kind = "eip"
)

// BindMode says how a HAVIP is bound to this node.
type BindMode string

// The HAVIP bind modes.
const (
	// BindAttach attaches this node and leaves other bound instances alone; the cloud moves the
	// master to the instance that announces the address (gratuitous ARP).
	BindAttach BindMode = "attach"
	// BindExclusive attaches this node and detaches every other bound instance.
	BindExclusive BindMode = "exclusive"
)

// RouteMode says how a route rule is moved to this node.
type RouteMode string

// The route modes.
const (
	// RouteAuto picks the action from the shape of the rule found in the table.
	RouteAuto RouteMode = "auto"
	// RouteSwitch insists on a primary/standby (HA) pair and uses switchRouteHA.
	RouteSwitch RouteMode = "switch"
	// RouteUpdate insists on a single-line rule and rewrites its next hop.
	RouteUpdate RouteMode = "update"
)

// Route shapes reported in Ownership.Shape.
const (
	ShapeHA     = "ha"     // a primary/standby pair (pathType ha:active / ha:standby)
	ShapeSingle = "single" // one rule with one next hop
	ShapeHAVIP  = "havip"  // the next hop is a HAVIP: the rule follows the HAVIP, nothing to do
)

// HAVIPSpec identifies a high-availability virtual IP.
type HAVIPSpec struct {
	ID   string
	Bind BindMode
	// VIP is the address the HAVIP must hold; used only by preflight checks and may be invalid.
	VIP netip.Addr
	// PublicIP, when set, is the elastic IP (IPv4, dotted decimal) the HAVIP must hold. A public
	// IP bound to a HAVIP follows the HAVIP's master by itself, so nothing moves on failover:
	// Observe reports whether the HAVIP holds it, and Claim binds it when the HAVIP holds none.
	// A HAVIP holding another public IP is reported, never changed. It never affects Owned.
	PublicIP string
}

// RouteSpec identifies a route rule by table and destination.
type RouteSpec struct {
	Table       string
	Destination string
	// NextHop is the next hop id that means "this node"; "" means this node's instance id (or its
	// ENI id when NextHopType is "enic").
	NextHop string
	// NextHopType is the type of NextHop; "" means "custom". A single-line rule of another type
	// is an error rather than updated: the update API cannot change a rule's type.
	NextHopType string
	Mode        RouteMode
}

// EIPSpec identifies an elastic IP bound directly to an instance.
type EIPSpec struct {
	Address string
}

// Resource is one thing that must point at this node. Exactly one of the specs matching Kind is
// set.
type Resource struct {
	Kind  Kind
	HAVIP *HAVIPSpec
	Route *RouteSpec
	EIP   *EIPSpec
}

// Key returns a stable identifier of the resource, such as "havip/havip-abc",
// "route/rt-1/0.0.0.0/0" or "eip/1.2.3.4". It is used in logs, metrics and token bases.
func (r Resource) Key() string {
	switch {
	case r.Kind == KindHAVIP && r.HAVIP != nil:
		return "havip/" + r.HAVIP.ID
	case r.Kind == KindRoute && r.Route != nil:
		return "route/" + r.Route.Table + "/" + r.Route.Destination
	case r.Kind == KindEIP && r.EIP != nil:
		return "eip/" + r.EIP.Address
	default:
		return string(r.Kind) + "/?"
	}
}

// String returns Key.
func (r Resource) String() string { return r.Key() }

// Ownership is what the cloud says about one resource.
type Ownership struct {
	// Owned reports that the cloud points the resource at this node.
	Owned bool
	// Current is what the resource points at now (an instance, ENI or next hop id), "" if none.
	Current string
	// Shape is, for routes, ShapeHA, ShapeSingle or ShapeHAVIP; for a HAVIP, the bind mode.
	Shape string
	// Detail is a human-readable summary.
	Detail string

	// PublicIP is, for a HAVIP whose spec names a public IP, the public IP the HAVIP holds, ""
	// if none.
	PublicIP string
	// PublicIPProblem is, for a HAVIP whose spec names a public IP, why the HAVIP does not hold
	// it, "" when it does. It is separate from Owned: a missing or wrong public IP never stops
	// or undoes the claim of the HAVIP's master.
	PublicIPProblem string
	// PublicIPBindable reports that the HAVIP holds no public IP and the wanted one looked free,
	// so that a Claim would bind it. The agent calls Claim for an Owned resource with this set
	// (on MASTER only), which then makes only that call.
	PublicIPBindable bool
}

// Provider is the cloud as the agent uses it. Package cloud/bce implements it.
type Provider interface {
	// Observe reads the resource's ownership; it makes no change.
	Observe(ctx context.Context, r Resource) (Ownership, error)
	// Claim makes the resource point at this node with the minimal mutating calls and returns
	// the ownership read back afterwards. tokenBase identifies (transition, resource); the
	// provider derives one clientToken per action from it with Token, so a retried claim reuses
	// its tokens. Each API call is retried inside by the retry policy, bounded by ctx; a
	// mutation that toggles rather than sets a state (a route switch) is retried only after a
	// read shows it was not applied. A cancelled or timed-out mutation may still be applied
	// by the cloud later: callers read the resource again rather than trust the error. In
	// dry-run mode Claim performs only the reads and logs the mutating calls it would make.
	Claim(ctx context.Context, r Resource, tokenBase string) (Ownership, error)
	// NodeID is this node's instance id, resolved when the provider was built. It makes no
	// call.
	NodeID() string
}

// Watcher is a Provider that keeps a read-only picture of the resources it is told of (the BCE
// client does, so that a failover can write first over a warm connection). Watch replaces the
// set; the daemon calls it when the provider is ready and after every reload.
type Watcher interface {
	Watch(resources []Resource)
}

// Validate reports whether the resource is well-formed, naming the offending field.
func (r Resource) Validate() error {
	switch r.Kind {
	case KindHAVIP:
		if r.HAVIP == nil || strings.TrimSpace(r.HAVIP.ID) == "" {
			return &PermanentError{Op: r.Key(), Reason: "havip: id is empty"}
		}
		switch r.HAVIP.Bind {
		case "", BindAttach, BindExclusive:
		default:
			return &PermanentError{Op: r.Key(), Reason: "havip: unknown bind mode " + quote(string(r.HAVIP.Bind))}
		}
		if p := r.HAVIP.PublicIP; p != "" && !isIPv4(p) {
			return &PermanentError{Op: r.Key(), Reason: "havip: public IP " + quote(p) + " is not an IPv4 address"}
		}
	case KindRoute:
		if r.Route == nil || r.Route.Table == "" || r.Route.Destination == "" {
			return &PermanentError{Op: r.Key(), Reason: "route: table and destination are required"}
		}
		switch r.Route.Mode {
		case "", RouteAuto, RouteSwitch, RouteUpdate:
		default:
			return &PermanentError{Op: r.Key(), Reason: "route: unknown mode " + quote(string(r.Route.Mode))}
		}
	case KindEIP:
		if r.EIP == nil || r.EIP.Address == "" {
			return &PermanentError{Op: r.Key(), Reason: "eip: address is empty"}
		}
		// The address is a path segment of the EIP API, in dotted decimal.
		if !isIPv4(r.EIP.Address) {
			return &PermanentError{Op: r.Key(), Reason: "eip: address " + quote(r.EIP.Address) + " is not an IPv4 address"}
		}
	default:
		return &PermanentError{Op: r.Key(), Reason: "unknown resource kind " + quote(string(r.Kind))}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

// isIPv4 reports whether s is an IPv4 address in its canonical dotted-decimal form.
func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4() && a.String() == s
}
