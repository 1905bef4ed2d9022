package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Seed is the initial world of the emulator: credentials, network topology and optional resources.
type Seed struct {
	Region      string           `toml:"region"`
	Credentials []SeedCredential `toml:"credential"`
	VPCs        []SeedVPC        `toml:"vpc"`
	Subnets     []SeedSubnet     `toml:"subnet"`
	Instances   []SeedInstance   `toml:"instance"`
	RouteTables []SeedRouteTable `toml:"route_table"`
	RouteRules  []SeedRouteRule  `toml:"route_rule"`
	HaVips      []SeedHaVip      `toml:"havip"`
	EIPs        []SeedEIP        `toml:"eip"`
	DCGateways  []SeedDCGateway  `toml:"dc_gateway"`

	// HASwitch says what switchRouteHA does to an HA pair, which no document says:
	// HASwitchPathType (the default) swaps the pathType of the two rules, which keep their next
	// hops; HASwitchNextHops swaps their next hops, the rules keep their pathType.
	HASwitch string `toml:"ha_switch"`
	// EIPTransition is how long an EIP bind or unbind stays in progress (status binding or
	// unbinding; the EIP documents list both statuses and say binding is done in the
	// background): a Go duration such as "2s", "" for none (the default).
	EIPTransition string `toml:"eip_transition"`
	// RateLimit is the account-wide limit of API requests per second of each access key, 0 for
	// none (the default); a request over it is answered 429 RequestLimitExceeded with
	// Retry-After. RateBurst is how many may come at once (default: the rate rounded up).
	// Options (the command's flags) override both.
	RateLimit float64 `toml:"rate_limit"`
	RateBurst int     `toml:"rate_burst"`
	// Latency is the round trip every API request takes, a Go duration such as "50ms"; "" for
	// none (the default). Options override it.
	Latency string `toml:"latency"`

	// name is the file name used in error messages; lines maps "table#index" to a line number.
	name  string
	lines map[string]int
}

// SeedCredential is an access key the API accepts. A non-empty SessionToken makes it an STS
// credential whose token must be sent in x-bce-security-token.
type SeedCredential struct {
	AccessKeyID     string `toml:"access_key_id"`
	SecretAccessKey string `toml:"secret_access_key"`
	SessionToken    string `toml:"session_token"`
}

// String hides the secret parts so a credential never leaks into logs.
func (c SeedCredential) String() string {
	return fmt.Sprintf("credential(%s)", c.AccessKeyID)
}

// SeedVPC is a VPC.
type SeedVPC struct {
	ID   string `toml:"id"`
	CIDR string `toml:"cidr"`
}

// SeedSubnet is a subnet inside a VPC.
type SeedSubnet struct {
	ID    string `toml:"id"`
	VPCID string `toml:"vpc_id"`
	CIDR  string `toml:"cidr"`
}

// SeedInstance is a server with one ENI in a subnet. Role names an instance role that the
// metadata service hands out credentials for.
type SeedInstance struct {
	ID        string `toml:"id"`
	ENIID     string `toml:"eni_id"`
	SubnetID  string `toml:"subnet_id"`
	PrivateIP string `toml:"private_ip"`
	Role      string `toml:"role"`
}

// SeedRouteTable is a route table of a VPC.
type SeedRouteTable struct {
	ID    string `toml:"id"`
	VPCID string `toml:"vpc_id"`
}

// SeedRouteRule is a pre-seeded route rule; StandbyID and StandbyNextHopID make it an HA pair
// whose active rule is ID (next hop NextHopID).
type SeedRouteRule struct {
	ID               string `toml:"id"`
	RouteTableID     string `toml:"route_table_id"`
	Source           string `toml:"source"`
	Destination      string `toml:"destination"`
	NextHopType      string `toml:"next_hop_type"`
	NextHopID        string `toml:"next_hop_id"`
	StandbyID        string `toml:"standby_id"`
	StandbyNextHopID string `toml:"standby_next_hop_id"`
	Description      string `toml:"description"`
}

// SeedHaVip is a pre-created HAVIP, optionally with bound instances (SERVER type).
type SeedHaVip struct {
	ID          string   `toml:"id"`
	SubnetID    string   `toml:"subnet_id"`
	PrivateIP   string   `toml:"private_ip"`
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	Instances   []string `toml:"instances"`
}

// SeedDCGateway is a dedicated-line gateway (ET gateway) of a VPC: a next hop of type dcGateway
// that must exist.
type SeedDCGateway struct {
	ID    string `toml:"id"`
	VPCID string `toml:"vpc_id"`
}

// Values of Seed.HASwitch.
const (
	HASwitchPathType = "path_type"
	HASwitchNextHops = "next_hops"
)

// SeedEIP is an elastic IP, optionally bound to an instance at start.
type SeedEIP struct {
	Address    string `toml:"address"`
	InstanceID string `toml:"instance_id"`
	Name       string `toml:"name"`
}

// LoadSeed reads and parses the seed file at path.
func LoadSeed(path string) (Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return Seed{}, fmt.Errorf("open seed: %w", err)
	}
	defer f.Close()
	return ParseSeed(f, path)
}

var arrayHeader = regexp.MustCompile(`^\s*\[\[\s*([A-Za-z0-9_]+)\s*\]\]`)

// ParseSeed parses a TOML seed. Unknown keys are errors naming name:line. The seed's
// consistency (ids, addresses, references) is checked by New, which also names name:line.
func ParseSeed(r io.Reader, name string) (Seed, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return Seed{}, fmt.Errorf("%s: read: %w", name, err)
	}
	var s Seed
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&s)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Seed{}, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, pe.Message)
		}
		return Seed{}, fmt.Errorf("%s: %w", name, err)
	}
	lines := strings.Split(string(data), "\n")
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return Seed{}, fmt.Errorf("%s:%d: unknown key %q", name, keyLine(lines, k), k.String())
	}
	s.name = name
	s.lines = map[string]int{}
	count := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if m := arrayHeader.FindStringSubmatch(sc.Text()); m != nil {
			s.lines[fmt.Sprintf("%s#%d", m[1], count[m[1]])] = n
			count[m[1]]++
		}
	}
	return s, nil
}

// keyLine finds the first line that defines the last component of k; 0 if not found.
func keyLine(lines []string, k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	last := regexp.QuoteMeta(k[len(k)-1])
	re := regexp.MustCompile(`^\s*(` + last + `|"` + last + `")\s*=|^\s*\[+\s*` + regexp.QuoteMeta(k.String()) + `\s*\]+`)
	for i, l := range lines {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}

// where names the place of item i of table in the seed file for error messages.
func (s *Seed) where(table string, i int) string {
	name := s.name
	if name == "" {
		name = "seed"
	}
	if n, ok := s.lines[fmt.Sprintf("%s#%d", table, i)]; ok {
		return fmt.Sprintf("%s:%d: %s[%d]", name, n, table, i)
	}
	return fmt.Sprintf("%s: %s[%d]", name, table, i)
}
