package bce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/eip"
	"github.com/baidubce/bce-sdk-go/services/havip"
	"github.com/baidubce/bce-sdk-go/services/vpc"
	"github.com/baidubce/bce-sdk-go/util"
)

// fakeBCE is a small BCE API over HTTP for the tests: it verifies bce-auth-v1 signatures,
// dedupes clientTokens the way the API documents (same token and same request: the stored
// answer; same token, other request: IdempotentParameterMismatch), records every request, and
// injects faults.
type fakeBCE struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	keys    map[string]string // access key id -> secret
	tokens  map[string]string // clientToken -> request fingerprint
	log     []recorded
	faults  []*fault
	havips  map[string]*havip.HaVip
	rules   []vpc.RouteRule
	eips    map[string]*eip.EipModel
	subnets map[string]string // subnet id -> CIDR
	pageLen int
	// masterOnAttach makes an attached instance the HAVIP master, as the cloud does once it
	// sees the instance's gratuitous ARP.
	masterOnAttach bool
	// applied counts mutations that changed state, by op.
	applied map[string]int
	// staleAfterSwitch makes the route reads after an applied switch show the rules as they
	// were before it, that many times: a lagging read replica.
	staleAfterSwitch int
	stale            int
	staleRules       []vpc.RouteRule
}

type recorded struct {
	Method, Path, RawQuery, Body string
	Query                        url.Values
	AccessKeyID, SecurityToken   string
}

// fault makes requests matching op ("PUT switchRouteHA", "GET /v1/havip/h") fail times times.
type fault struct {
	match      func(r *recorded) bool
	times      int
	status     int
	code       string
	retryAfter string
	// apply performs the request before failing or hanging: an answer lost on the way back.
	apply bool
	// hang holds the answer until the client gives up.
	hang bool
}

func newFakeBCE(t *testing.T) *fakeBCE {
	f := &fakeBCE{t: t, keys: map[string]string{"AKtest": testSecret}, tokens: map[string]string{},
		havips: map[string]*havip.HaVip{}, eips: map[string]*eip.EipModel{}, subnets: map[string]string{}, pageLen: 1000, applied: map[string]int{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { checkFakeContract(t, f) })
	return f
}

func (f *fakeBCE) addFault(match string, ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft.match = func(r *recorded) bool {
		return strings.Contains(r.Method+" "+r.Path+"?"+r.RawQuery, match)
	}
	f.faults = append(f.faults, &ft)
}

func (f *fakeBCE) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.log...)
}

func (f *fakeBCE) mutations() []recorded {
	var m []recorded
	for _, r := range f.requests() {
		if r.Method != http.MethodGet {
			m = append(m, r)
		}
	}
	return m
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-bce-request-id", "req-fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg, "requestId": "req-fake"})
}

func (f *fakeBCE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: string(body), Query: r.URL.Query(),
		SecurityToken: r.Header.Get("x-bce-security-token")}
	ak, err := f.verify(r)
	rec.AccessKeyID = ak
	f.mu.Lock()
	f.log = append(f.log, rec)
	var ft *fault
	for _, x := range f.faults {
		if x.times > 0 && x.match(&rec) {
			x.times--
			ft = x
			break
		}
	}
	f.mu.Unlock()
	if err != nil {
		writeErr(w, err.status, err.code, err.msg)
		return
	}
	if ft != nil && !ft.apply {
		f.fail(w, r, ft)
		return
	}
	status, answer, e := f.handle(&rec)
	if ft != nil {
		f.fail(w, r, ft)
		return
	}
	if e != nil {
		writeErr(w, e.status, e.code, e.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if answer != nil {
		_ = json.NewEncoder(w).Encode(answer)
	}
}

func (f *fakeBCE) fail(w http.ResponseWriter, r *http.Request, ft *fault) {
	if ft.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	if ft.retryAfter != "" {
		w.Header().Set("Retry-After", ft.retryAfter)
	}
	writeErr(w, ft.status, ft.code, "injected")
}

type apiErr struct {
	status    int
	code, msg string
}

// verify checks the bce-auth-v1 Authorization header.
func (f *fakeBCE) verify(r *http.Request) (string, *apiErr) {
	parts := strings.Split(r.Header.Get("Authorization"), "/")
	if len(parts) != 6 || parts[0] != "bce-auth-v1" {
		return "", &apiErr{400, "InvalidHTTPAuthHeader", "bad authorization"}
	}
	ak, ts, exp, signed, sig := parts[1], parts[2], parts[3], parts[4], parts[5]
	f.mu.Lock()
	sk, ok := f.keys[ak]
	f.mu.Unlock()
	if !ok {
		return ak, &apiErr{403, "InvalidAccessKeyId", "unknown key"}
	}
	var q []string
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			q = append(q, util.UriEncode(k, true)+"="+util.UriEncode(v, true))
		}
	}
	sort.Strings(q)
	var hs []string
	for _, h := range strings.Split(signed, ";") {
		v := r.Header.Get(h)
		if strings.EqualFold(h, "host") {
			v = r.Host
		}
		hs = append(hs, util.UriEncode(h, true)+":"+util.UriEncode(strings.TrimSpace(v), true))
	}
	sort.Strings(hs)
	canonical := strings.Join([]string{r.Method, util.UriEncode(r.URL.Path, false), strings.Join(q, "&"), strings.Join(hs, "\n")}, "\n")
	key := hmacHex(sk, "bce-auth-v1/"+ak+"/"+ts+"/"+exp)
	if want := hmacHex(key, canonical); want != sig {
		return ak, &apiErr{400, "SignatureDoesNotMatch", "signature mismatch"}
	}
	if !strings.Contains(signed, "host") || !strings.Contains(signed, "x-bce-date") {
		return ak, &apiErr{400, "InvalidHTTPAuthHeader", "host and x-bce-date must be signed"}
	}
	return ak, nil
}

func hmacHex(key, s string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// idempotent reports whether the request's token was seen: (true, nil) for a replay of the same
// request, an error for a different request under the same token.
func (f *fakeBCE) idempotent(r *recorded) (bool, *apiErr) {
	tok := r.Query.Get("clientToken")
	if tok == "" {
		return false, &apiErr{400, "InvalidParameter", "clientToken required by this fake"}
	}
	q := r.Query
	fp := r.Method + " " + r.Path + " " + q.Encode() + " " + r.Body
	if prev, ok := f.tokens[tok]; ok {
		if prev != fp {
			return false, &apiErr{403, "IdempotentParameterMismatch", "token reused"}
		}
		return true, nil
	}
	f.tokens[tok] = fp
	return false, nil
}

func (f *fakeBCE) handle(r *recorded) (int, any, *apiErr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seg := strings.Split(strings.Trim(r.Path, "/"), "/")
	switch {
	case r.Method == "GET" && len(seg) == 3 && seg[1] == "havip":
		h, ok := f.havips[seg[2]]
		if !ok {
			return 0, nil, &apiErr{404, "NoSuchObject", "no havip"}
		}
		return 200, h, nil
	case r.Method == "PUT" && len(seg) == 3 && seg[1] == "havip" && r.Query.Has("bindPublicIp"):
		h, ok := f.havips[seg[2]]
		if !ok {
			return 0, nil, &apiErr{404, "NoSuchObject", "no havip"}
		}
		var args struct {
			PublicIPAddress string `json:"publicIpAddress"`
		}
		if err := json.Unmarshal([]byte(r.Body), &args); err != nil || args.PublicIPAddress == "" {
			return 0, nil, &apiErr{400, "InvalidParameter", "bad body"}
		}
		if replay, e := f.idempotent(r); e != nil || replay {
			return 200, nil, e
		}
		m, ok := f.eips[args.PublicIPAddress]
		if !ok || h.PublicIpAddress != "" || m.InstanceId != "" {
			delete(f.tokens, r.Query.Get("clientToken")) // a failed request is not remembered
		}
		switch {
		case !ok:
			return 0, nil, &apiErr{404, "NoSuchObject", "no eip"}
		case h.PublicIpAddress != "":
			return 0, nil, &apiErr{400, "HaVipPublicIpAlreadyBinded", "havip has a public ip"}
		case m.InstanceId != "":
			return 0, nil, &apiErr{400, "EipAlreadyBinded", "eip is bound"}
		}
		h.PublicIpAddress = m.Eip
		m.InstanceId, m.InstanceType, m.Status = h.HaVipId, "HAVIP", "binded"
		f.applied["havip.bindPublicIp"]++
		return 200, nil, nil
	case r.Method == "PUT" && len(seg) == 3 && seg[1] == "havip":
		h, ok := f.havips[seg[2]]
		if !ok {
			return 0, nil, &apiErr{404, "NoSuchObject", "no havip"}
		}
		var args havip.HaVipInstanceArgs
		if err := json.Unmarshal([]byte(r.Body), &args); err != nil || len(args.InstanceIds) == 0 || args.InstanceType == "" {
			return 0, nil, &apiErr{400, "InvalidParameter", "bad body"}
		}
		if replay, e := f.idempotent(r); e != nil || replay {
			return 200, nil, e
		}
		switch {
		case r.Query.Has("attach"):
			for _, id := range args.InstanceIds {
				if f.masterOnAttach {
					for i := range h.BindedInstances {
						h.BindedInstances[i].Master = false
					}
				}
				h.BindedInstances = append(h.BindedInstances, havip.HaVipBindedInstance{InstanceId: id, InstanceType: args.InstanceType, Master: f.masterOnAttach})
			}
			f.applied["havip.attach"]++
		case r.Query.Has("detach"):
			var keep []havip.HaVipBindedInstance
			for _, b := range h.BindedInstances {
				if !contains(args.InstanceIds, b.InstanceId) {
					keep = append(keep, b)
				}
			}
			h.BindedInstances = keep
			f.applied["havip.detach"]++
		default:
			return 0, nil, &apiErr{400, "InvalidParameter", "no action"}
		}
		return 200, nil, nil
	case r.Method == "GET" && r.Path == "/v1/route/rule":
		table := r.Query.Get("routeTableId")
		rules := f.rules
		if f.stale > 0 {
			f.stale--
			rules = f.staleRules
		}
		var all []vpc.RouteRule
		for _, x := range rules {
			if x.RouteTableId == table {
				all = append(all, x)
			}
		}
		start := 0
		if m := r.Query.Get("marker"); m != "" {
			for i, x := range all {
				if x.RouteRuleId == m {
					start = i
				}
			}
		}
		end := min(start+f.pageLen, len(all))
		res := vpc.GetRouteRuleResult{Marker: r.Query.Get("marker"), MaxKeys: 1000, RouteRules: all[start:end]}
		if end < len(all) {
			res.IsTruncated, res.NextMarker = true, all[end].RouteRuleId
		}
		return 200, res, nil
	case r.Method == "PUT" && len(seg) == 4 && seg[1] == "route" && seg[2] == "rule":
		idx := -1
		for i, x := range f.rules {
			if x.RouteRuleId == seg[3] {
				idx = i
			}
		}
		if idx < 0 {
			return 0, nil, &apiErr{404, "NoSuchObject", "no rule"}
		}
		if r.Query.Has("switchRouteHA") {
			if r.Body != "" {
				return 0, nil, &apiErr{400, "InvalidParameter", "switch takes no body"}
			}
			if replay, e := f.idempotent(r); e != nil || replay {
				return 200, nil, e
			}
			if f.rules[idx].PathType != "ha:active" {
				return 0, nil, &apiErr{400, "InvalidParameter", "not the active rule"}
			}
			if f.staleAfterSwitch > 0 {
				f.staleRules, f.stale = append([]vpc.RouteRule(nil), f.rules...), f.staleAfterSwitch
			}
			for i, x := range f.rules {
				if x.RouteTableId == f.rules[idx].RouteTableId && x.DestinationAddress == f.rules[idx].DestinationAddress && x.PathType == "ha:standby" {
					f.rules[i].PathType = "ha:active"
				}
			}
			f.rules[idx].PathType = "ha:standby"
			f.applied["route.switch"]++
			return 200, nil, nil
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			return 0, nil, &apiErr{400, "MalformedJSON", "bad body"}
		}
		for _, k := range []string{"sourceAddress", "destinationAddress", "nexthopId"} {
			if body[k] == "" {
				return 0, nil, &apiErr{400, "InvalidParameter", k + " empty"}
			}
		}
		if replay, e := f.idempotent(r); e != nil || replay {
			return 200, nil, e
		}
		// The documented update has no nexthopType: the rule keeps its type.
		f.rules[idx].NexthopId = body["nexthopId"]
		f.applied["route.update"]++
		return 200, nil, nil
	case r.Method == "GET" && len(seg) == 3 && seg[1] == "subnet":
		cidr, ok := f.subnets[seg[2]]
		if !ok {
			return 0, nil, &apiErr{404, "NoSuchObject", "no subnet"}
		}
		return 200, vpc.GetSubnetDetailResult{Subnet: vpc.Subnet{SubnetId: seg[2], Cidr: cidr}}, nil
	case r.Method == "GET" && r.Path == "/v1/eip":
		res := eip.ListEipResult{MaxKeys: 1000}
		if a := r.Query.Get("eip"); a != "" {
			if m, ok := f.eips[a]; ok {
				res.EipList = append(res.EipList, *m)
			}
			return 200, res, nil
		}
		addrs := make([]string, 0, len(f.eips))
		for a := range f.eips {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			m := f.eips[a]
			if id := r.Query.Get("instanceId"); id != "" && m.InstanceId != id {
				continue
			}
			if typ := r.Query.Get("instanceType"); typ != "" && m.InstanceType != typ {
				continue
			}
			res.EipList = append(res.EipList, *m)
		}
		return 200, res, nil
	case r.Method == "PUT" && len(seg) == 3 && seg[1] == "eip":
		m, ok := f.eips[seg[2]]
		if !ok {
			return 0, nil, &apiErr{404, "NoSuchObject", "no eip"}
		}
		if replay, e := f.idempotent(r); e != nil || replay {
			return 200, nil, e
		}
		switch {
		case r.Query.Has("unbind"):
			m.InstanceId, m.InstanceType, m.Status = "", "", "available"
			f.applied["eip.unbind"]++
		case r.Query.Has("bind"):
			var args eip.BindEipArgs
			if err := json.Unmarshal([]byte(r.Body), &args); err != nil || args.InstanceId == "" {
				return 0, nil, &apiErr{400, "InvalidParameter", "bad body"}
			}
			if m.InstanceId != "" {
				return 0, nil, &apiErr{400, "EipStatusError", "eip is bound"}
			}
			m.InstanceId, m.InstanceType, m.Status = args.InstanceId, args.InstanceType, "binded"
			f.applied["eip.bind"]++
		}
		return 200, nil, nil
	}
	return 0, nil, &apiErr{404, "InvalidURI", fmt.Sprintf("no route for %s %s", r.Method, r.Path)}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// client returns a Client of this node (i-self) against the fake, with tiny backoffs.
func (f *fakeBCE) client(t *testing.T, mod func(*Options)) (*Client, *logBuffer) {
	t.Helper()
	opts := Options{Region: "bj", Endpoint: f.srv.URL, EIPEndpoint: f.srv.URL, InstanceID: "i-self",
		Timeout: 2 * time.Second, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	creds, err := NewCredentials("AKtest", testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	lb, logger := newLogBuffer()
	c, err := New(context.Background(), opts, StaticCredentials(creds), logger)
	if err != nil {
		t.Fatal(err)
	}
	return c, lb
}
