package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// Cloud configures the Baidu Cloud side.
type Cloud struct {
	Provider          string   `toml:"provider"`
	Region            string   `toml:"region"`
	Endpoint          string   `toml:"endpoint"`
	EIPEndpoint       string   `toml:"eip_endpoint"`
	Credentials       string   `toml:"credentials"`
	MetadataEndpoint  string   `toml:"metadata_endpoint"`
	InstanceID        string   `toml:"instance_id"`
	InstanceType      string   `toml:"instance_type"`
	ENIID             string   `toml:"eni_id"`
	Timeout           Duration `toml:"timeout"`
	ReconcileInterval Duration `toml:"reconcile_interval"`
	ReclaimMaxBackoff Duration `toml:"reclaim_max_backoff"`
	ConfirmTimeout    Duration `toml:"confirm_timeout"`
	DryRun            bool     `toml:"dry_run"`
	// RateLimit and RateBurst bound the agent's API requests, all its instances together, to
	// rate_limit per second and rate_burst at once; the calls that move traffic go first.
	RateLimit float64 `toml:"rate_limit"`
	RateBurst int     `toml:"rate_burst"`
	// KeepWarm is how often a resource nothing else read is read (a node that is not MASTER
	// reads its resources this often), keeping the connections and the picture that let a
	// failover write first; 0s disables.
	KeepWarm Duration `toml:"keep_warm"`
}

// Defaults of the client-side rate limit and of the keep-warm reads.
const (
	DefaultRateLimit = 10
	DefaultRateBurst = 20
	DefaultKeepWarm  = 30 * time.Second
)

// CredentialsInstanceRole selects the instance role's temporary credentials.
const CredentialsInstanceRole = "instance-role"

// Enabled reports whether cloud calls are configured at all.
func (c *Cloud) Enabled() bool { return c != nil && c.Provider == "bce" }

func (c *Cloud) applyDefaults() {
	setDefault(&c.Provider, "bce")
	setDefault(&c.Region, "bj")
	if c.Endpoint == "" {
		c.Endpoint = "https://bcc." + c.Region + ".baidubce.com"
	}
	if c.EIPEndpoint == "" {
		c.EIPEndpoint = "https://eip." + c.Region + ".baidubce.com"
	}
	setDefault(&c.Credentials, "/etc/havip-agent/credentials.toml")
	setDefault(&c.MetadataEndpoint, "http://169.254.169.254")
	setDefault(&c.InstanceType, "BCC")
	c.Timeout.orDefault(3 * time.Second)
	c.ReconcileInterval.orDefault(10 * time.Second)
	c.ReclaimMaxBackoff.orDefault(60 * time.Second)
	c.ConfirmTimeout.orDefault(10 * time.Second)
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst == 0 {
		c.RateBurst = DefaultRateBurst
	}
	c.KeepWarm.orDefault(DefaultKeepWarm)
}

// validRegion: a lower-case letter, then up to 31 lower-case letters,
// digits or '-'.
func validRegion(s string) bool {
	return s != "" && 'a' <= s[0] && s[0] <= 'z' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" && len(s) <= 32
}

// validID: a letter or digit, then up to 63 letters, digits, '_' or '-'.
func validID(s string) bool {
	return s != "" && s[0] != '_' && s[0] != '-' && cloud.ASCIIName(s, 1, 64, "_-")
}

// validateURL reports whether s is an http(s) base URL, adding a problem
// when it is not.
func validateURL(v *validator, key, s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		v.add(key, "%q is not an http(s) base URL such as https://bcc.bj.baidubce.com", s)
		return false
	}
	return true
}

// metadataAddr is where the metadata service answers, over plain http by
// design: it is reachable only from the instance itself.
var metadataAddr = netip.AddrFrom4([4]byte{169, 254, 169, 254})

func isMetadataService(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(u.Hostname())
	return err == nil && a == metadataAddr
}

// warnPlainHTTP warns about a valid base URL that is plain http to a host
// other than loopback: requests (a session token among their headers) and
// answers can be read and altered on the way.
func warnPlainHTTP(v *validator, key, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return
	}
	host := u.Hostname()
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return
	}
	v.warn(key, "%q is plain http to a host that is not loopback: requests and answers can be read and altered on the way (use https)", s)
}

func validateID(v *validator, key, s, prefix string) {
	if s == "" {
		return
	}
	if !validID(s) || (prefix != "" && len(s) <= len(prefix)) || (prefix != "" && s[:len(prefix)] != prefix) {
		if prefix != "" {
			v.add(key, "%q is not an id of the form %sxxxxxxxx", s, prefix)
		} else {
			v.add(key, "%q is not a valid id", s)
		}
	}
}

func (c *Config) validateCloud(v *validator) {
	cl := c.Cloud
	if cl == nil {
		return
	}
	oneOf(v, "cloud.provider", cl.Provider, "bce", "none")
	if !validRegion(cl.Region) {
		v.add("cloud.region", "%q is not a region name such as bj, gz, su", cl.Region)
	}
	if validateURL(v, "cloud.endpoint", cl.Endpoint) && cl.Enabled() {
		warnPlainHTTP(v, "cloud.endpoint", cl.Endpoint)
	}
	if validateURL(v, "cloud.eip_endpoint", cl.EIPEndpoint) && cl.Enabled() {
		warnPlainHTTP(v, "cloud.eip_endpoint", cl.EIPEndpoint)
	}
	if validateURL(v, "cloud.metadata_endpoint", cl.MetadataEndpoint) && cl.Enabled() && !isMetadataService(cl.MetadataEndpoint) {
		warnPlainHTTP(v, "cloud.metadata_endpoint", cl.MetadataEndpoint)
	}
	if cl.Credentials != CredentialsInstanceRole {
		requireAbs(v, "cloud.credentials", cl.Credentials)
	}
	validateID(v, "cloud.instance_id", cl.InstanceID, "")
	validateID(v, "cloud.eni_id", cl.ENIID, "eni-")
	oneOf(v, "cloud.instance_type", cl.InstanceType, "BCC", "BBC")
	durRange(v, "cloud.timeout", cl.Timeout.Duration, 100*time.Millisecond, time.Minute)
	durRange(v, "cloud.reconcile_interval", cl.ReconcileInterval.Duration, 100*time.Millisecond, time.Hour)
	durRange(v, "cloud.confirm_timeout", cl.ConfirmTimeout.Duration, 100*time.Millisecond, 10*time.Minute)
	durRange(v, "cloud.reclaim_max_backoff", cl.ReclaimMaxBackoff.Duration, cl.ReconcileInterval.Duration, 24*time.Hour)
	if cl.RateLimit < 0.1 || cl.RateLimit > 1000 {
		v.add("cloud.rate_limit", "%v is out of range (0.1 to 1000 requests per second)", cl.RateLimit)
	}
	if cl.RateBurst < 1 || cl.RateBurst > 1000 {
		v.add("cloud.rate_burst", "%d is out of range (1 to 1000 requests)", cl.RateBurst)
	}
	if d := cl.KeepWarm.Duration; d != 0 {
		durRange(v, "cloud.keep_warm", d, time.Second, time.Hour)
	}
}

func durRange(v *validator, key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.add(key, "%s is out of range (%s to %s)", d, lo, hi)
	}
}

func (c *Config) validateInstanceCloud(v *validator, p string, in *Instance) {
	hasCloud := in.HAVIP != "" || in.HAVIPPublicIP != "" || len(in.Routes) > 0 || len(in.EIPs) > 0
	if hasCloud && !c.Cloud.Enabled() {
		v.add(p, "names cloud resources but there is no [cloud] section with provider = \"bce\"")
	}
	validateID(v, p+".havip", in.HAVIP, "havip-")
	if in.HAVIP != "" {
		oneOf(v, p+".havip_bind", in.HAVIPBind, "attach", "exclusive")
	} else if in.HAVIPBind != "" {
		v.add(p+".havip_bind", "needs havip")
	}
	if in.HAVIPPublicIP != "" {
		if in.HAVIP == "" {
			v.add(p+".havip_public_ip", "needs havip")
		}
		if a, err := netip.ParseAddr(in.HAVIPPublicIP); err != nil || !a.Is4() {
			v.add(p+".havip_public_ip", "%q is not an IPv4 address", in.HAVIPPublicIP)
		}
	}
	seen := map[string]int{}
	for j, r := range in.Routes {
		k := fmt.Sprintf("%s.route[%d]", p, j)
		if r.Table == "" {
			v.add(k+".table", "is required")
		} else {
			validateID(v, k+".table", r.Table, "rt-")
		}
		if _, err := netip.ParsePrefix(r.Destination); err != nil {
			v.add(k+".destination", "%q is not a CIDR such as 0.0.0.0/0", r.Destination)
		}
		validateID(v, k+".next_hop", r.NextHop, "")
		oneOf(v, k+".next_hop_type", r.NextHopType, "custom", "enic", "havip", "vpn", "nat", "dcGateway", "peerConn")
		oneOf(v, k+".mode", r.Mode, "auto", "switch", "update")
		if r.Mode == "switch" && r.NextHopType != "dcGateway" {
			// doc/VPC.md of bce-sdk-go: the next hops of a multi-line route are dedicated-line
			// gateways only, so a primary/standby pair of any other type cannot exist.
			v.add(k+".mode", "switch needs next_hop_type = \"dcGateway\" and next_hop naming this node's gateway: "+
				"primary/standby routes take only dedicated-line gateways; for an instance next hop use a single-line "+
				"rule (mode update) or a rule whose next hop is the HAVIP")
		}
		if r.NextHopType == "dcGateway" && r.NextHop == "" {
			v.add(k+".next_hop", "is required with next_hop_type = \"dcGateway\": the id of this node's dedicated-line gateway")
		}
		key := r.Table + " " + r.Destination
		if i, dup := seen[key]; dup {
			v.add(k, "table %s destination %s is already listed as route[%d]", r.Table, r.Destination, i)
		}
		seen[key] = j
	}
	eips := map[string]bool{}
	for j, e := range in.EIPs {
		k := fmt.Sprintf("%s.eip[%d].address", p, j)
		if a, err := netip.ParseAddr(e.Address); err != nil || !a.Is4() {
			v.add(k, "%q is not an IPv4 address", e.Address)
		} else if eips[e.Address] {
			v.add(k, "%s is listed twice", e.Address)
		}
		eips[e.Address] = true
	}
}

// validateOneEIPPerNode refuses a second [[instance.eip]] on the node, across all its instances:
// the EIP bind refuses an instance that already holds an EIP (EIP API, Bind EIP), so a node can
// hold one directly bound EIP. The same address in two instances would be moved by both.
func (c *Config) validateOneEIPPerNode(v *validator) {
	first, firstKey := "", ""
	for i := range c.Instances {
		for j, e := range c.Instances[i].EIPs {
			k := fmt.Sprintf("instance[%d].eip[%d]", i, j)
			switch {
			case first == "":
				first, firstKey = e.Address, k
			case e.Address == first:
				// Twice in one instance is reported with the instance.
				if !strings.HasPrefix(firstKey, fmt.Sprintf("instance[%d].", i)) {
					v.add(k+".address", "%s is also listed in %s: one EIP is moved by one instance", e.Address, firstKey)
				}
			default:
				v.add(k+".address", "%s would be a second EIP on this node (%s is %s): an instance can hold one EIP, the EIP bind refuses an instance that holds one", e.Address, firstKey, first)
			}
		}
	}
}
