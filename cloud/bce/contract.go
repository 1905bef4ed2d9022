package bce

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Request is one request the agent can send: its method, path (a segment in braces stands for
// an id), the query parameters it may carry (Action, when set, is the flag that names the
// action and must be present), the top-level fields its JSON body may hold (none: no body), and
// the document it comes from.
type Request struct {
	Op     string
	Method string
	Path   string
	Action string
	Query  []string
	Body   []string
	Source string
}

// Sources of the contract. The seeds are the documents kept with the project; the SDK is
// bce-sdk-go v0.9.277 (its services code and doc/*.md).
const (
	srcHAVIP     = "HAVIP Go SDK (seed 000; SDK doc/HAVIP.md, services/havip)"
	srcRoute     = "VPC route Go SDK (seed 003; SDK doc/VPC.md, services/vpc)"
	srcSwitch    = "VPC route Go SDK, primary-standby switch (seed 003, seeds README: the HTTP form)"
	srcSubnet    = "SDK doc/VPC.md, query a specified subnet (vpc.GetSubnetDetail)"
	srcEIPList   = "EIP API, query EIP list (SDK doc/EIP.md, eip.ListEipArgs)"
	srcEIPBind   = "EIP API, bind EIP (cloud.baidu.com/doc/EIP/s/9jwvz31gn; SDK doc/EIP.md)"
	srcEIPUnbind = "EIP API, unbind EIP (SDK doc/EIP.md, eip.UnBindEip)"
	srcIdem      = "clientToken: EIP API general description (seed 002)"
	srcRole      = "BCC, Set IAM Role (the page shows no body; fields as STS answers them, SDK services/sts)"
	srcShortID   = "BCC instance metadata (no stored document)"
)

// Contract lists every request the agent sends. A test checks every request the cloud/bce tests
// send against it (CheckRequest), and cloud/bce/testdata/api.md is its rendering.
var Contract = []Request{
	{Op: "metadata.instance-shortid", Method: http.MethodGet, Path: "/1.0/meta-data/instance-shortid", Source: srcShortID},
	{Op: "metadata.sts-credential", Method: http.MethodGet, Path: "/latest/meta-data/sts-credential", Source: srcRole},
	{Op: OpHAVIPDetail, Method: http.MethodGet, Path: "/v1/havip/{haVipId}", Source: srcHAVIP},
	{Op: OpHAVIPAttach, Method: http.MethodPut, Path: "/v1/havip/{haVipId}", Action: "attach", Query: []string{"attach", "clientToken"},
		Body: []string{"instanceIds", "instanceType"}, Source: srcHAVIP + "; " + srcIdem},
	{Op: OpHAVIPDetach, Method: http.MethodPut, Path: "/v1/havip/{haVipId}", Action: "detach", Query: []string{"detach", "clientToken"},
		Body: []string{"instanceIds", "instanceType"}, Source: srcHAVIP + "; " + srcIdem},
	{Op: OpHAVIPBindPublicIP, Method: http.MethodPut, Path: "/v1/havip/{haVipId}", Action: "bindPublicIp", Query: []string{"bindPublicIp", "clientToken"},
		Body: []string{"publicIpAddress"}, Source: srcHAVIP + "; " + srcIdem},
	{Op: OpRouteRuleList, Method: http.MethodGet, Path: "/v1/route/rule", Query: []string{"routeTableId", "marker", "maxKeys"}, Source: srcRoute},
	{Op: OpRouteRuleSwitch, Method: http.MethodPut, Path: "/v1/route/rule/{routeRuleId}", Action: "switchRouteHA", Query: []string{"switchRouteHA", "clientToken"},
		Source: srcSwitch},
	{Op: OpRouteRuleUpdate, Method: http.MethodPut, Path: "/v1/route/rule/{routeRuleId}", Query: []string{"clientToken"},
		Body: []string{"sourceAddress", "destinationAddress", "nexthopId", "description"}, Source: srcRoute + ", update route rules"},
	{Op: OpSubnetDetail, Method: http.MethodGet, Path: "/v1/subnet/{subnetId}", Source: srcSubnet},
	{Op: OpEIPList, Method: http.MethodGet, Path: "/v1/eip", Query: []string{"eip", "instanceType", "instanceId"}, Source: srcEIPList},
	{Op: OpEIPBind, Method: http.MethodPut, Path: "/v1/eip/{eip}", Action: "bind", Query: []string{"bind", "clientToken"},
		Body: []string{"instanceType", "instanceId"}, Source: srcEIPBind + "; " + srcIdem},
	{Op: OpEIPUnbind, Method: http.MethodPut, Path: "/v1/eip/{eip}", Action: "unbind", Query: []string{"unbind", "clientToken"},
		Source: srcEIPUnbind + "; " + srcIdem},
}

// CheckRequest returns the contract entry of a request (method, path, raw query and the
// top-level fields of its JSON body), or an error naming what is not in the contract: the
// request itself, a query parameter or a body field.
func CheckRequest(method, path, rawQuery string, bodyFields []string) (Request, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Request{}, fmt.Errorf("%s %s?%s: query: %w", method, path, rawQuery, err)
	}
	var match *Request
	for i := range Contract {
		r := &Contract[i]
		if r.Method != method || !pathMatches(r.Path, path) {
			continue
		}
		if r.Action != "" && q.Has(r.Action) {
			match = r
			break
		}
		if r.Action == "" && match == nil {
			match = r
		}
	}
	if match == nil {
		return Request{}, fmt.Errorf("%s %s is not in the contract", method, path)
	}
	var extra []string
	for k := range q {
		if !slices.Contains(match.Query, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		return *match, fmt.Errorf("%s %s?%s (%s): query parameter(s) %s not in the contract", method, path, rawQuery, match.Op, strings.Join(extra, ", "))
	}
	extra = nil
	for _, f := range bodyFields {
		if !slices.Contains(match.Body, f) {
			extra = append(extra, f)
		}
	}
	if len(extra) > 0 {
		return *match, fmt.Errorf("%s %s (%s): body field(s) %s not in the contract", method, path, match.Op, strings.Join(extra, ", "))
	}
	return *match, nil
}

// pathMatches reports whether path fits pattern, whose segments in braces stand for one
// non-empty segment.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
		} else if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// RenderContract renders Contract as a Markdown table.
func RenderContract() string {
	var b strings.Builder
	b.WriteString("# Requests havip-agent sends\n\n")
	b.WriteString("Generated from `Contract` in cloud/bce/contract.go (`go test ./cloud/bce -run Contract -update`).\n")
	b.WriteString("A query parameter in bold is the action flag; every query parameter and body field is one the\nagent may send, none other.\n\n")
	b.WriteString("| operation | method | path | query | body fields | source |\n|---|---|---|---|---|---|\n")
	for _, r := range Contract {
		qs := make([]string, 0, len(r.Query))
		for _, k := range r.Query {
			k = "`" + k + "`"
			if k == "`"+r.Action+"`" {
				k = "**" + k + "**"
			}
			qs = append(qs, k)
		}
		body := "none"
		if len(r.Body) > 0 {
			body = "`" + strings.Join(r.Body, "`, `") + "`"
		}
		query := "none"
		if len(qs) > 0 {
			query = strings.Join(qs, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s | %s |\n", r.Op, r.Method, r.Path, query, body, r.Source)
	}
	return b.String()
}
