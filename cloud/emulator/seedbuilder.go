package emulator

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The world every SeedBuilder starts from: the region the agent's tests
// use and a VPC with one subnet inside the test range.
const (
	builderRegion     = "bj"
	builderVPCCIDR    = "198.18.0.0/16"
	builderSubnetCIDR = "198.18.0.0/24"
)

// SeedBuilder builds a seed in code. It is a test helper, exported for
// the tests of other packages (the e2e rig, the command line's tests) so
// that they share one way of writing a world instead of copies of its
// text; nothing in the emulator itself uses it.
type SeedBuilder struct {
	seed   Seed
	vpc    string
	subnet string
}

// NewSeedBuilder starts a seed with one credential and one VPC,
// "vpc-"+name, holding one subnet, "sbn-"+name.
func NewSeedBuilder(name, accessKeyID, secretAccessKey string) *SeedBuilder {
	b := &SeedBuilder{vpc: "vpc-" + name, subnet: "sbn-" + name}
	b.seed.Region = builderRegion
	b.seed.Credentials = []SeedCredential{{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}}
	b.seed.VPCs = []SeedVPC{{ID: b.vpc, CIDR: builderVPCCIDR}}
	b.seed.Subnets = []SeedSubnet{{ID: b.subnet, VPCID: b.vpc, CIDR: builderSubnetCIDR}}
	return b
}

// Instance adds a server "i-"+name with the ENI "eni-"+name at ip in the
// subnet.
func (b *SeedBuilder) Instance(name, ip string) *SeedBuilder {
	b.seed.Instances = append(b.seed.Instances, SeedInstance{ID: "i-" + name, ENIID: "eni-" + name, SubnetID: b.subnet, PrivateIP: ip})
	return b
}

// DCGateway adds a dedicated-line gateway to the VPC.
func (b *SeedBuilder) DCGateway(id string) *SeedBuilder {
	b.seed.DCGateways = append(b.seed.DCGateways, SeedDCGateway{ID: id, VPCID: b.vpc})
	return b
}

// RouteTable adds a route table to the VPC.
func (b *SeedBuilder) RouteTable(id string) *SeedBuilder {
	b.seed.RouteTables = append(b.seed.RouteTables, SeedRouteTable{ID: id, VPCID: b.vpc})
	return b
}

// RouteRule adds r as given, from any source when r.Source is empty.
func (b *SeedBuilder) RouteRule(r SeedRouteRule) *SeedBuilder {
	if r.Source == "" {
		r.Source = "0.0.0.0/0"
	}
	b.seed.RouteRules = append(b.seed.RouteRules, r)
	return b
}

// HAVIP adds a HAVIP at ip in the subnet, bound to instances.
func (b *SeedBuilder) HAVIP(id, ip, name string, instances ...string) *SeedBuilder {
	b.seed.HaVips = append(b.seed.HaVips, SeedHaVip{ID: id, SubnetID: b.subnet, PrivateIP: ip, Name: name, Instances: instances})
	return b
}

// EIP adds an elastic IP, bound to instanceID unless it is empty.
func (b *SeedBuilder) EIP(address, instanceID string) *SeedBuilder {
	b.seed.EIPs = append(b.seed.EIPs, SeedEIP{Address: address, InstanceID: instanceID})
	return b
}

// RateLimit limits each access key to rate API requests per second, burst at once (0: the
// rate rounded up).
func (b *SeedBuilder) RateLimit(rate float64, burst int) *SeedBuilder {
	b.seed.RateLimit, b.seed.RateBurst = rate, burst
	return b
}

// Latency makes every API request take d, a round trip.
func (b *SeedBuilder) Latency(d time.Duration) *SeedBuilder {
	b.seed.Latency = ""
	if d > 0 {
		b.seed.Latency = d.String()
	}
	return b
}

// Seed is the seed built so far, for New. Its errors name the tables by
// index only; ParseSeed of TOML also names their lines.
func (b *SeedBuilder) Seed() Seed {
	s := b.seed
	s.name = "seed builder"
	return s
}

// TOML renders the seed as a seed file: the top-level keys, then every
// table in the order of Seed's fields, each key that is set once.
func (b *SeedBuilder) TOML() string {
	var w strings.Builder
	v := reflect.ValueOf(b.seed)
	for i := 0; i < v.NumField(); i++ {
		if key := tomlKey(v.Type().Field(i)); key != "" && v.Field(i).Kind() != reflect.Slice {
			writeKey(&w, key, v.Field(i))
		}
	}
	for i := 0; i < v.NumField(); i++ {
		key, f := tomlKey(v.Type().Field(i)), v.Field(i)
		if key == "" || f.Kind() != reflect.Slice {
			continue
		}
		for j := 0; j < f.Len(); j++ {
			fmt.Fprintf(&w, "\n[[%s]]\n", key)
			e := f.Index(j)
			for k := 0; k < e.NumField(); k++ {
				if key := tomlKey(e.Type().Field(k)); key != "" {
					writeKey(&w, key, e.Field(k))
				}
			}
		}
	}
	return w.String()
}

// tomlKey is the key of a seed field, "" for the fields the file does not
// hold.
func tomlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	return f.Tag.Get("toml")
}

// writeKey writes key = v unless v is empty or zero. The seed's fields are
// strings, numbers and lists of strings; another kind is a field this
// renderer was not taught, which its test catches.
func writeKey(w *strings.Builder, key string, v reflect.Value) {
	switch {
	case v.Kind() == reflect.Int:
		if v.Int() != 0 {
			fmt.Fprintf(w, "%s = %d\n", key, v.Int())
		}
	case v.Kind() == reflect.Float64:
		if v.Float() != 0 {
			fmt.Fprintf(w, "%s = %s\n", key, strconv.FormatFloat(v.Float(), 'f', -1, 64))
		}
	case v.Kind() == reflect.String && v.String() != "":
		fmt.Fprintf(w, "%s = %s\n", key, tomlString(v.String()))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String && v.Len() > 0:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = tomlString(v.Index(i).String())
		}
		fmt.Fprintf(w, "%s = [%s]\n", key, strings.Join(items, ", "))
	case v.Kind() != reflect.String && v.Kind() != reflect.Slice && v.Kind() != reflect.Int && v.Kind() != reflect.Float64:
		panic(fmt.Sprintf("emulator: SeedBuilder cannot render %s (%s)", key, v.Kind()))
	}
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
