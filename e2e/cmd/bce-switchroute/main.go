// Command bce-switchroute is the "common practice" baseline of the
// comparison benchmark: a one-shot program, run from a keepalived
// notify_master script, that makes this node the active next hop of
// primary/standby (HA) routes with the BCE Go SDK.
//
// It lists the rules of a route table, finds the HA pair of each
// destination (or of each rule id), and switches the pair when its active
// rule does not already point at this node's next hop (its instance, or
// the dedicated-line gateway it stands for, the only next hops the cloud
// takes in a pair):
//
//	bce-switchroute -endpoint http://198.18.0.1:8080 -credentials creds.toml \
//	    -table rt-1 -destination 198.19.0.0/24 -next-hop dcgw-n2
//
// The credentials file holds access_key_id and secret_access_key (TOML).
// The switch is PUT /v1/route/rule/{id}?switchRouteHA&clientToken=..., built
// with the SDK's request builder and signer, because vpc.SwitchRoute in
// v0.9.277 drops the switchRouteHA flag.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	sdk "github.com/baidubce/bce-sdk-go/bce"
	"github.com/baidubce/bce-sdk-go/http"
	"github.com/baidubce/bce-sdk-go/services/vpc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bce-switchroute:", err)
		os.Exit(1)
	}
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bce-switchroute", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "VPC API endpoint, such as https://bcc.bj.baidubce.com")
	credsPath := fs.String("credentials", "", "TOML file with access_key_id and secret_access_key")
	table := fs.String("table", "", "route table id")
	nextHop := fs.String("next-hop", "", "this node's next hop id to make active (its dedicated-line gateway)")
	timeoutMS := fs.Int("timeout-ms", 3000, "connection timeout of each request in milliseconds")
	var dests, rules list
	fs.Var(&dests, "destination", "destination CIDR of an HA route (repeatable)")
	fs.Var(&rules, "rule", "id of either rule of an HA pair (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *endpoint == "":
		return errors.New("-endpoint is required")
	case *credsPath == "":
		return errors.New("-credentials is required")
	case *table == "":
		return errors.New("-table is required")
	case *nextHop == "":
		return errors.New("-next-hop is required")
	case len(dests)+len(rules) == 0:
		return errors.New("give at least one -destination or -rule")
	}
	ak, sk, err := loadCredentials(*credsPath)
	if err != nil {
		return err
	}
	c, err := vpc.NewClient(ak, sk, *endpoint)
	if err != nil {
		return fmt.Errorf("creating the SDK client: %w", err)
	}
	c.Config.ConnectionTimeoutInMillis = *timeoutMS
	all, err := listRules(c, *table)
	if err != nil {
		return err
	}
	var wanted []pair
	for _, d := range dests {
		p, err := pairOf(all, func(r vpc.RouteRule) bool { return sameCIDR(r.DestinationAddress, d) }, "destination "+d)
		if err != nil {
			return err
		}
		wanted = append(wanted, p)
	}
	for _, id := range rules {
		var dest string
		for _, r := range all {
			if r.RouteRuleId == id {
				dest = r.DestinationAddress
			}
		}
		if dest == "" {
			return fmt.Errorf("rule %s: not in table %s", id, *table)
		}
		p, err := pairOf(all, func(r vpc.RouteRule) bool { return sameCIDR(r.DestinationAddress, dest) }, "rule "+id)
		if err != nil {
			return err
		}
		wanted = append(wanted, p)
	}
	for _, p := range wanted {
		if p.active.NexthopId == *nextHop {
			fmt.Fprintf(out, "%s: active rule %s already points at %s\n", p.active.DestinationAddress, p.active.RouteRuleId, *nextHop)
			continue
		}
		if p.standby.NexthopId != *nextHop {
			return fmt.Errorf("%s: %s is in neither rule of the pair (%s -> %s, %s -> %s)", p.active.DestinationAddress, *nextHop,
				p.active.RouteRuleId, p.active.NexthopId, p.standby.RouteRuleId, p.standby.NexthopId)
		}
		token, err := clientToken()
		if err != nil {
			return err
		}
		err = sdk.NewRequestBuilder(c).
			WithURL("/v1/route/rule/"+p.active.RouteRuleId).
			WithMethod(http.PUT).
			WithQueryParam("switchRouteHA", "").
			WithQueryParam("clientToken", token).
			Do()
		if err != nil {
			return fmt.Errorf("switching %s (rule %s): %w", p.active.DestinationAddress, p.active.RouteRuleId, err)
		}
		fmt.Fprintf(out, "%s: switched, active next hop %s -> %s\n", p.active.DestinationAddress, p.active.NexthopId, *nextHop)
	}
	return nil
}

// loadCredentials reads the key pair; errors never include the secret.
func loadCredentials(path string) (ak, sk string, err error) {
	var f struct {
		AccessKeyID     string `toml:"access_key_id"`
		SecretAccessKey string `toml:"secret_access_key"`
	}
	if _, err := toml.DecodeFile(path, &f); err != nil {
		return "", "", fmt.Errorf("credentials %s: %w", path, err)
	}
	if f.AccessKeyID == "" || f.SecretAccessKey == "" {
		return "", "", fmt.Errorf("credentials %s: access_key_id and secret_access_key are required", path)
	}
	return f.AccessKeyID, f.SecretAccessKey, nil
}

// listRules reads every rule of the table, following the pages.
func listRules(c *vpc.Client, table string) ([]vpc.RouteRule, error) {
	var all []vpc.RouteRule
	marker := ""
	for range 100 {
		page, err := c.GetRouteRuleDetail(&vpc.GetRouteRuleArgs{RouteTableId: table, Marker: marker})
		if err != nil {
			return nil, fmt.Errorf("listing the rules of %s: %w", table, err)
		}
		all = append(all, page.RouteRules...)
		if !page.IsTruncated || page.NextMarker == "" || page.NextMarker == marker {
			return all, nil
		}
		marker = page.NextMarker
	}
	return nil, fmt.Errorf("listing the rules of %s: more than 100 pages", table)
}

// pair is an HA route: its active and standby rules.
type pair struct{ active, standby vpc.RouteRule }

func pairOf(all []vpc.RouteRule, match func(vpc.RouteRule) bool, what string) (pair, error) {
	var p pair
	n := 0
	for _, r := range all {
		if !match(r) {
			continue
		}
		n++
		switch r.PathType {
		case "ha:active":
			p.active = r
		case "ha:standby":
			p.standby = r
		}
	}
	if n != 2 || p.active.RouteRuleId == "" || p.standby.RouteRuleId == "" {
		return pair{}, fmt.Errorf("%s: want an ha:active/ha:standby pair, found %d rules", what, n)
	}
	return p, nil
}

func sameCIDR(a, b string) bool {
	pa, ea := netip.ParsePrefix(strings.TrimSpace(a))
	pb, eb := netip.ParsePrefix(strings.TrimSpace(b))
	if ea != nil || eb != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return pa.Masked() == pb.Masked()
}

// clientToken is a fresh idempotency token: one invocation, one switch.
func clientToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
