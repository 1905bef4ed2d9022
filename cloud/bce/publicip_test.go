package bce

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/eip"
	"github.com/baidubce/bce-sdk-go/services/havip"

	"github.com/havip-agent/havip-agent/cloud"
)

const publicIP = "198.19.0.10"

func havipPublicRes(id, public string) cloud.Resource {
	return cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: id, PublicIP: public}}
}

func TestHAVIPPublicIP(t *testing.T) {
	self := []havip.HaVipBindedInstance{{InstanceId: "i-self", InstanceType: "SERVER", Master: true}}
	other := []havip.HaVipBindedInstance{{InstanceId: "i-other", InstanceType: "SERVER", Master: true}}
	bindReq := wantReq{"PUT", "/v1/havip/havip-1", "bindPublicIp&clientToken=" + cloud.Token(tokenBase, "havip.bindPublicIp/"+publicIP),
		`{"publicIpAddress":"` + publicIP + `"}`}
	attachReq := wantReq{"PUT", "/v1/havip/havip-1", "attach&clientToken=" + cloud.Token(tokenBase, "havip.attach/i-self"),
		`{"instanceIds":["i-self"],"instanceType":"SERVER"}`}
	tests := []struct {
		name       string
		bound      []havip.HaVipBindedInstance
		holds      string // the HAVIP's public IP at start
		eipOn      string // the instance the EIP is bound to at start
		bindFault  *fault
		wantBefore cloud.Ownership // public IP fields of Observe before the claim
		wantReqs   []wantReq
		wantPublic string // PublicIP after the claim
		wantProb   string // a substring of PublicIPProblem after the claim, "" for none
	}{
		{name: "holds it", bound: self, holds: publicIP,
			wantBefore: cloud.Ownership{PublicIP: publicIP}, wantPublic: publicIP},
		{name: "owned, holds none", bound: self,
			wantBefore: cloud.Ownership{PublicIPBindable: true}, wantReqs: []wantReq{bindReq}, wantPublic: publicIP},
		{name: "not owned, holds none", bound: other,
			wantBefore: cloud.Ownership{PublicIPBindable: true}, wantReqs: []wantReq{attachReq, bindReq}, wantPublic: publicIP},
		{name: "holds another", bound: other, holds: "198.19.0.99",
			wantBefore: cloud.Ownership{PublicIP: "198.19.0.99"}, wantReqs: []wantReq{attachReq}, wantPublic: "198.19.0.99",
			wantProb: "holds public IP 198.19.0.99, not " + publicIP},
		{name: "eip bound elsewhere", bound: self, eipOn: "i-other",
			wantBefore: cloud.Ownership{}, wantProb: "is bound to BCC i-other"},
		{name: "bind refused", bound: other, bindFault: &fault{times: 5, status: 400, code: "InvalidParameter"},
			wantBefore: cloud.Ownership{PublicIPBindable: true}, wantReqs: []wantReq{attachReq, bindReq},
			wantProb: "binding public IP " + publicIP + " to HAVIP havip-1 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBCE(t)
			f.masterOnAttach = true
			f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1", PrivateIpAddress: "10.0.0.100", PublicIpAddress: tt.holds,
				BindedInstances: append([]havip.HaVipBindedInstance(nil), tt.bound...)}
			m := &eip.EipModel{Eip: publicIP, Status: "available"}
			switch {
			case tt.holds == publicIP:
				m.InstanceId, m.InstanceType, m.Status = "havip-1", "HAVIP", "binded"
			case tt.eipOn != "":
				m.InstanceId, m.InstanceType, m.Status = tt.eipOn, "BCC", "binded"
			}
			f.eips[publicIP] = m
			if tt.bindFault != nil {
				f.addFault("bindPublicIp", *tt.bindFault)
			}
			c, logs := f.client(t, nil)
			ctx := context.Background()
			r := havipPublicRes("havip-1", publicIP)

			o, err := c.Observe(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if o.PublicIP != tt.wantBefore.PublicIP || o.PublicIPBindable != tt.wantBefore.PublicIPBindable ||
				(o.PublicIPProblem == "") != (tt.holds == publicIP) {
				t.Fatalf("Observe = %+v; want public IP fields %+v", o, tt.wantBefore)
			}
			if o.PublicIPProblem != "" && !strings.Contains(o.Detail, o.PublicIPProblem) {
				t.Errorf("Detail %q does not carry the problem", o.Detail)
			}
			if n := len(f.mutations()); n != 0 {
				t.Fatalf("Observe sent %d mutations", n)
			}

			o, err = c.Claim(ctx, r, tokenBase)
			if err != nil || !o.Owned {
				t.Fatalf("Claim = %+v, %v; want owned without error whatever the public IP", o, err)
			}
			checkMutations(t, f, tt.wantReqs)
			if o.PublicIP != tt.wantPublic {
				t.Errorf("PublicIP = %q, want %q", o.PublicIP, tt.wantPublic)
			}
			if tt.wantProb == "" && o.PublicIPProblem != "" || !strings.Contains(o.PublicIPProblem, tt.wantProb) {
				t.Errorf("PublicIPProblem = %q, want %q", o.PublicIPProblem, tt.wantProb)
			}
			if tt.wantProb != "" && !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("the problem was not logged as an error:\n%s", logs)
			}
			if n := f.applied["havip.unbindPublicIp"] + f.applied["eip.unbind"]; n != 0 {
				t.Fatal("a public IP was unbound")
			}
		})
	}
}

func TestHAVIPPublicIPDryRun(t *testing.T) {
	f := newFakeBCE(t)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	f.eips[publicIP] = &eip.EipModel{Eip: publicIP, Status: "available"}
	c, _ := f.client(t, func(o *Options) { o.DryRun = true })
	o, err := c.Claim(context.Background(), havipPublicRes("havip-1", publicIP), tokenBase)
	if err != nil || !strings.Contains(o.Detail, "would attach i-self, then bind public IP "+publicIP) {
		t.Fatalf("Claim = %+v, %v", o, err)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Fatalf("dry-run sent %v", m)
	}
}

// On BBC nodes the EIP bind says BBC; the HAVIP attach stays SERVER (or ENI).
func TestBBCInstanceType(t *testing.T) {
	f := newFakeBCE(t)
	f.masterOnAttach = true
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	f.eips["198.19.0.11"] = &eip.EipModel{Eip: "198.19.0.11", Status: "available"}
	c, _ := f.client(t, func(o *Options) { o.InstanceType = "BBC" })
	ctx := context.Background()
	if _, err := c.Claim(ctx, havipRes("havip-1", ""), tokenBase); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Claim(ctx, cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "198.19.0.11"}}, tokenBase); err != nil {
		t.Fatal(err)
	}
	checkMutations(t, f, []wantReq{
		{"PUT", "/v1/havip/havip-1", "attach&clientToken=" + cloud.Token(tokenBase, "havip.attach/i-self"), `{"instanceIds":["i-self"],"instanceType":"SERVER"}`},
		{"PUT", "/v1/eip/198.19.0.11", "bind&clientToken=" + cloud.Token(tokenBase, "eip.bind/i-self"), `{"instanceType":"BBC","instanceId":"i-self"}`},
	})
	if rep := c.Preflight(ctx, nil); !strings.Contains(rep.String(), "instance i-self (BBC)") {
		t.Errorf("preflight does not name the instance type:\n%s", rep)
	}
}

func TestEIPNotTakenFromNonNodes(t *testing.T) {
	tests := []struct {
		name    string
		m       eip.EipModel
		pending bool
		want    string
	}{
		{name: "havip", m: eip.EipModel{InstanceType: "HAVIP", InstanceId: "havip-1", Status: "binded"}, want: "configure it as havip_public_ip"},
		{name: "havip without a type", m: eip.EipModel{InstanceId: "havip-1", Status: "binded"}, want: "configure it as havip_public_ip"},
		{name: "blb", m: eip.EipModel{InstanceType: "BLB", InstanceId: "lb-1", Status: "binded"}, want: "bound to BLB lb-1"},
		{name: "nat", m: eip.EipModel{InstanceType: "NAT", InstanceId: "nat-1", Status: "binded"}, want: "bound to NAT nat-1"},
		{name: "unknown holder without a type", m: eip.EipModel{InstanceId: "lb-9", Status: "binded"}, want: "bound to lb-9, not to a node"},
		{name: "binding", m: eip.EipModel{InstanceType: "BCC", InstanceId: "i-other", Status: "binding"}, pending: true, want: "binding"},
		{name: "unbinding", m: eip.EipModel{InstanceType: "BCC", InstanceId: "i-other", Status: "unbinding"}, pending: true, want: "unbinding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBCE(t)
			m := tt.m
			m.Eip = "198.19.0.12"
			f.eips[m.Eip] = &m
			c, _ := f.client(t, nil)
			_, err := c.Claim(context.Background(), cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: m.Eip}}, tokenBase)
			var pe *cloud.PendingError
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.As(err, &pe) != tt.pending || cloud.IsPermanent(err) == tt.pending {
				t.Fatalf("err = %v; want %q (pending %v)", err, tt.want, tt.pending)
			}
			if n := len(f.mutations()); n != 0 {
				t.Fatalf("%d mutations, want none", n)
			}
		})
	}
}

type requestLog struct {
	mu  sync.Mutex
	got []string
}

func (l *requestLog) add(op, code string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 {
		op += " negative duration"
	}
	l.got = append(l.got, op+" "+code)
}

func (l *requestLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestOnRequest(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	f.addFault("switchRouteHA", fault{times: 1, status: 500, code: "InternalError"})
	f.addFault("switchRouteHA", fault{times: 1, status: 502})
	var l requestLog
	c, _ := f.client(t, func(o *Options) { o.OnRequest = l.add })
	if _, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase); err != nil {
		t.Fatal(err)
	}
	f.addFault("/v1/havip/havip-1", fault{times: 1, hang: true})
	c2, _ := f.client(t, func(o *Options) { o.OnRequest = l.add; o.Timeout = 200 * time.Millisecond; o.MaxAttempts = 1 })
	if _, err := c2.Observe(context.Background(), havipRes("havip-1", "")); err == nil {
		t.Fatal("a hung request succeeded")
	}
	got := strings.Join(l.list(), "\n")
	want := strings.Join([]string{
		"route.rule.list OK",
		"route.rule.switch InternalError",
		"route.rule.list OK",
		"route.rule.switch HTTP502",
		"route.rule.list OK",
		"route.rule.switch OK",
		"route.rule.list OK",
		"havip.detail timeout",
	}, "\n")
	if got != want {
		t.Fatalf("OnRequest calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestRequestCode(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithTimeout(live, -time.Second)
	defer cancel2()
	tests := []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{live, nil, CodeOK},
		{live, &cloud.APIError{StatusCode: 400, Code: "RequestExpired"}, "RequestExpired"},
		{live, &cloud.APIError{StatusCode: 503}, "HTTP503"},
		{live, &cloud.TransportError{Operation: "x", Err: errors.New("connection refused")}, CodeNetwork},
		{live, &cloud.TransportError{Operation: "x", Err: errors.New("dial tcp: i/o timeout")}, CodeTimeout},
		{expired, &cloud.TransportError{Operation: "x", Err: errors.New("broken")}, CodeTimeout},
		{cancelled, &cloud.TransportError{Operation: "x", Err: errors.New("broken")}, CodeCanceled},
		{live, &cloud.TransportError{Operation: "x", Err: &decodeError{errors.New("bad json")}}, CodeMalformed},
		{live, &malformedError{&cloud.PermanentError{Op: "x", Reason: "huge"}}, CodeMalformed},
		{live, &malformedError{&cloud.APIError{StatusCode: 500, Code: "InternalError"}}, CodeMalformed},
		{live, &cloud.APIError{StatusCode: 500, Code: "InternalError"}, "InternalError"},
		{live, &cloud.APIError{StatusCode: 429, Code: "Throttling.User"}, "Throttling.User"},
		{live, &cloud.APIError{StatusCode: 400, Code: "Evil\x1b[31m"}, CodeOther},
		{live, &cloud.APIError{StatusCode: 400, Code: strings.Repeat("A", 100)}, CodeOther},
		{live, &cloud.APIError{StatusCode: 503, Code: "ServiceUnavailable"}, CodeOther},
		{live, &cloud.APIError{StatusCode: 999}, CodeOther},
		{live, &cloud.APIError{StatusCode: 200}, CodeOther},
	}
	for _, tt := range tests {
		if got := requestCode(tt.ctx, tt.err); got != tt.want {
			t.Errorf("requestCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if !cloud.IsPermanent(&malformedError{&cloud.PermanentError{Op: "x", Reason: "huge"}}) {
		t.Error("an oversized answer is no longer permanent")
	}
}
