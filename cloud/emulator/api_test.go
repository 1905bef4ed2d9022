package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	bceeip "github.com/baidubce/bce-sdk-go/services/eip"
	bcehavip "github.com/baidubce/bce-sdk-go/services/havip"
	bcevpc "github.com/baidubce/bce-sdk-go/services/vpc"
)

func TestSDKHaVipLifecycle(t *testing.T) {
	emu, srv := newTest(t, Options{})
	c := havipClient(t, srv.URL)

	res, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "vip1", ClientToken: "tok-create"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.HaVipId
	if !strings.HasPrefix(id, "havip-") {
		t.Fatalf("got id %q", id)
	}
	d, err := c.GetHaVipDetail(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.PrivateIpAddress != "198.18.0.2" || d.Status != "available" || d.VpcId != "vpc-1" {
		t.Fatalf("got detail %+v", d)
	}
	// Same token, same request: the first answer, nothing new created.
	res2, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "vip1", ClientToken: "tok-create"})
	if err != nil || res2.HaVipId != id {
		t.Fatalf("replay got %v %v, want %s", res2, err, id)
	}
	if _, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "vip2", PrivateIpAddress: "198.18.0.50"}); err != nil {
		t.Fatal(err)
	}

	// Paging: three HAVIPs, one per page.
	var all []string
	marker := ""
	for range 5 {
		l, err := c.ListHaVip(&bcehavip.ListHaVipArgs{VpcId: "vpc-1", Marker: marker, MaxKeys: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range l.HaVips {
			all = append(all, h.HaVipId)
		}
		if !l.IsTruncated {
			break
		}
		marker = l.NextMarker
	}
	if len(all) != 3 || all[0] != "havip-seed1" || all[1] != id {
		t.Fatalf("paged list got %v", all)
	}

	if err := c.UpdateHaVip(&bcehavip.UpdateHaVipArgs{HaVipId: id, Name: "renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: id, InstanceIds: []string{"i-a"}, InstanceType: "SERVER"}); err != nil {
		t.Fatal(err)
	}
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: id, InstanceIds: []string{"eni-b"}, InstanceType: "ENI"}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.GetHaVipDetail(id)
	if d.Name != "renamed" || d.Status != "binded" || len(d.BindedInstances) != 2 {
		t.Fatalf("got %+v", d)
	}
	if d.BindedInstances[0].Master || !d.BindedInstances[1].Master || d.BindedInstances[1].InstanceId != "eni-b" {
		t.Fatalf("most recently attached must be master: %+v", d.BindedInstances)
	}
	err = c.DeleteHaVip(&bcehavip.DeleteHaVipArgs{HaVipId: id})
	wantServiceError(t, err, 400, "HaVipHasBindedInstance")

	if err := c.HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: id, PublicIpAddress: "203.0.113.10"}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.GetHaVipDetail(id)
	if d.PublicIpAddress != "203.0.113.10" {
		t.Fatalf("public ip %q", d.PublicIpAddress)
	}
	if err := c.HaVipUnbindPublicIp(&bcehavip.HaVipUnbindPublicIpArgs{HaVipId: id}); err != nil {
		t.Fatal(err)
	}
	if err := c.HaVipDetachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: id, InstanceIds: []string{"i-a"}, InstanceType: "SERVER"}); err != nil {
		t.Fatal(err)
	}
	if err := c.HaVipDetachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: id, InstanceIds: []string{"eni-b"}, InstanceType: "ENI"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteHaVip(&bcehavip.DeleteHaVipArgs{HaVipId: id}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetHaVipDetail(id)
	wantServiceError(t, err, 404, "NoSuchObject")
	if n := countChanges(emu, "created at"); n != 2 { // the replay is not applied again
		t.Fatalf("got %d creations, want 2", n)
	}
}

func TestHaVipValidation(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := havipClient(t, srv.URL)
	attach := func(id, typ string, ids ...string) error {
		return c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: id, InstanceIds: ids, InstanceType: typ})
	}
	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"ip outside subnet", func() error {
			_, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "x", PrivateIpAddress: "198.18.5.1"})
			return err
		}, 400, "HaVipPrivateIpNotInSubnet"},
		{"ip in use by instance", func() error {
			_, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "x", PrivateIpAddress: "198.18.0.11"})
			return err
		}, 400, "HaVipPrivateIpInUse"},
		{"ip in use by havip", func() error {
			_, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1", Name: "x", PrivateIpAddress: "198.18.0.100"})
			return err
		}, 400, "HaVipPrivateIpInUse"},
		{"unknown subnet", func() error {
			_, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-nope", Name: "x"})
			return err
		}, 404, "NoSuchObject"},
		{"empty name", func() error {
			_, err := c.CreateHaVip(&bcehavip.CreateHaVipArgs{SubnetId: "sbn-1"})
			return err
		}, 400, "InvalidParameter"},
		{"unknown havip", func() error { return attach("havip-nope", "SERVER", "i-b") }, 404, "NoSuchObject"},
		{"unknown instance", func() error { return attach("havip-seed1", "SERVER", "i-nope") }, 404, "InstanceNotFound"},
		{"eni id as server", func() error { return attach("havip-seed1", "SERVER", "eni-b") }, 404, "InstanceNotFound"},
		{"bad type", func() error { return attach("havip-seed1", "BCC", "i-b") }, 400, "InvalidParameter"},
		{"other vpc", func() error { return attach("havip-seed1", "SERVER", "i-x") }, 400, "HaVipInstanceNotInSameVpc"},
		{"already bound", func() error { return attach("havip-seed1", "SERVER", "i-a") }, 400, "HaVipInstanceAlreadyBinded"},
		{"more than five", func() error { return attach("havip-seed1", "SERVER", "i-b", "i-c", "i-d", "i-e", "i-f") }, 400, "HaVipInstanceLimitExceeded"},
		{"detach unbound", func() error {
			return c.HaVipDetachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-b"}, InstanceType: "SERVER"})
		}, 400, "HaVipInstanceNotBinded"},
		{"delete bound", func() error { return c.DeleteHaVip(&bcehavip.DeleteHaVipArgs{HaVipId: "havip-seed1"}) }, 400, "HaVipHasBindedInstance"},
		{"eip bound elsewhere", func() error {
			return c.HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: "havip-seed1", PublicIpAddress: "203.0.113.11"})
		}, 400, "EipAlreadyBinded"},
		{"unknown eip", func() error {
			return c.HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: "havip-seed1", PublicIpAddress: "203.0.113.99"})
		}, 404, "NoSuchObject"},
		{"unbind without public ip", func() error {
			return c.HaVipUnbindPublicIp(&bcehavip.HaVipUnbindPublicIpArgs{HaVipId: "havip-seed1"})
		}, 400, "HaVipPublicIpNotBinded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantServiceError(t, tt.call(), tt.status, tt.code)
		})
	}
	// Only one public IP per HAVIP.
	if err := c.HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: "havip-seed1", PublicIpAddress: "203.0.113.10"}); err != nil {
		t.Fatal(err)
	}
	e := eipClient(t, srv.URL)
	if err := e.UnBindEip("203.0.113.11", ""); err != nil {
		t.Fatal(err)
	}
	err := c.HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: "havip-seed1", PublicIpAddress: "203.0.113.11"})
	wantServiceError(t, err, 400, "HaVipPublicIpAlreadyBinded")
	// The bad requests changed nothing: the seeded HAVIP still has one instance.
	d, err := c.GetHaVipDetail("havip-seed1")
	if err != nil || len(d.BindedInstances) != 1 || !d.BindedInstances[0].Master {
		t.Fatalf("got %+v %v", d, err)
	}
}

func TestMalformedJSON(t *testing.T) {
	_, srv := newTest(t, Options{})
	tests := []struct {
		body string
		code string
	}{
		{"", "MalformedJSON"},
		{"{", "MalformedJSON"},
		{"[1]", "InappropriateJSON"},
		{`{"instanceIds":"i-a","instanceType":"SERVER"}`, "InappropriateJSON"},
	}
	for _, tt := range tests {
		r := signedDo(t, srv.URL, "PUT", "/v1/havip/havip-seed1", map[string]string{"attach": ""}, []byte(tt.body))
		if r.status != 400 || r.code() != tt.code {
			t.Errorf("body %q: got %d %s, want 400 %s", tt.body, r.status, r.body, tt.code)
		}
		var e map[string]string
		if err := json.Unmarshal(r.body, &e); err != nil || e["requestId"] == "" || e["requestId"] != r.header.Get("x-bce-request-id") {
			t.Errorf("error body %s lacks the request id %q", r.body, r.header.Get("x-bce-request-id"))
		}
	}
}

func TestSDKRoutes(t *testing.T) {
	emu, srv := newTest(t, Options{})
	c := vpcClient(t, srv.URL)

	tbl, err := c.GetRouteTableDetail("", "vpc-1")
	if err != nil {
		t.Fatal(err)
	}
	if tbl.RouteTableId != "rt-1" || len(tbl.RouteRules) != 3 { // HA pair + sys route
		t.Fatalf("got %+v", tbl)
	}
	single, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0",
		DestinationAddress: "192.0.2.0/24", NexthopId: "i-c", NexthopType: bcevpc.NEXTHOP_TYPE_CUSTOM, ClientToken: "tok-rr"})
	if err != nil || !strings.HasPrefix(single.RouteRuleId, "rr-") {
		t.Fatalf("got %+v %v", single, err)
	}
	ha, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "198.18.0.0/24",
		DestinationAddress: "192.0.2.0/24", NextHopList: []bcevpc.NextHop{
			{NexthopId: "dcgw-1", NexthopType: bcevpc.NEXTHOP_TYPE_ETGATEWAY, PathType: "ha:active"},
			{NexthopId: "dcgw-2", NexthopType: bcevpc.NEXTHOP_TYPE_ETGATEWAY, PathType: "ha:standby"},
		}})
	if err != nil || len(ha.RouteRuleIds) != 2 {
		t.Fatalf("got %+v %v", ha, err)
	}

	// Paging through the four rules two at a time.
	var ids []string
	marker := ""
	for range 4 {
		l, err := c.GetRouteRuleDetail(&bcevpc.GetRouteRuleArgs{RouteTableId: "rt-1", Marker: marker, MaxKeys: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.RouteRules {
			ids = append(ids, r.RouteRuleId)
		}
		if !l.IsTruncated {
			break
		}
		marker = l.NextMarker
	}
	want := []string{"rr-ha1", "rr-ha2", single.RouteRuleId, ha.RouteRuleIds[0], ha.RouteRuleIds[1]}
	if strings.Join(ids, ",") != strings.Join(want[:len(ids)], ",") || len(ids) != 5 {
		t.Fatalf("got %v, want %v", ids, want)
	}

	// Update applies to single-line rules only.
	if err := c.UpdateRouteRule(&bcevpc.UpdateRouteRuleArgs{RouteRuleId: single.RouteRuleId, SourceAddress: "0.0.0.0/0",
		DestinationAddress: "192.0.2.0/24", NexthopId: "i-d"}); err != nil {
		t.Fatal(err)
	}
	err = c.UpdateRouteRule(&bcevpc.UpdateRouteRuleArgs{RouteRuleId: "rr-ha1", SourceAddress: "0.0.0.0/0",
		DestinationAddress: "203.0.113.0/24", NexthopId: "i-c"})
	wantServiceError(t, err, 400, "RouteRuleNotSingleLine")
	err = c.UpdateRouteRule(&bcevpc.UpdateRouteRuleArgs{RouteRuleId: single.RouteRuleId, NexthopId: "i-nope"})
	wantServiceError(t, err, 400, "RouteNexthopNotFound")

	// The SDK's SwitchRoute sends no flag and no body: an update without a body, refused.
	before := emu.State().RouteRules
	err = c.SwitchRoute("rr-ha1", "tok-sdk-switch")
	wantServiceError(t, err, 400, "MalformedJSON")
	if got := emu.State().RouteRules; !equalJSON(got, before) {
		t.Fatalf("failed SwitchRoute changed rules: %+v", got)
	}

	// The real form switches; the same token replays without switching again.
	for range 2 {
		r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/rr-ha1", map[string]string{"switchRouteHA": "", "clientToken": "tok-sw1"}, nil)
		if r.status != 200 {
			t.Fatalf("switch got %d %s", r.status, r.body)
		}
	}
	if n := countChanges(emu, "active dcgw-1 -> dcgw-2"); n != 1 {
		t.Fatalf("got %d switches, want 1", n)
	}
	l, _ := c.GetRouteRuleDetail(&bcevpc.GetRouteRuleArgs{RouteTableId: "rt-1"})
	for _, r := range l.RouteRules {
		if (r.RouteRuleId == "rr-ha1" && r.PathType != "ha:standby") || (r.RouteRuleId == "rr-ha2" && r.PathType != "ha:active") {
			t.Fatalf("after switch got %+v", r)
		}
	}
	// rr-ha1 is now the standby: switching it is refused; so is a single-line rule.
	for _, id := range []string{"rr-ha1", single.RouteRuleId} {
		r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/"+id, map[string]string{"switchRouteHA": ""}, nil)
		if r.status != 400 || r.code() != "RouteRuleNotHaActive" {
			t.Fatalf("switch %s got %d %s", id, r.status, r.body)
		}
	}
	r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/rr-nope", map[string]string{"switchRouteHA": ""}, nil)
	if r.status != 404 {
		t.Fatalf("switch unknown got %d %s", r.status, r.body)
	}

	if err := c.DeleteRouteRule(single.RouteRuleId, ""); err != nil {
		t.Fatal(err)
	}
	err = c.DeleteRouteRule(single.RouteRuleId, "")
	wantServiceError(t, err, 404, "NoSuchObject")
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestRouteValidation(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := vpcClient(t, srv.URL)
	create := func(src, dst, typ, id string) error {
		_, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: src,
			DestinationAddress: dst, NexthopId: id, NexthopType: bcevpc.NexthopType(typ)})
		return err
	}
	tests := []struct {
		name          string
		src, dst, typ string
		id            string
		status        int
		code          string
	}{
		{"overlaps vpc", "0.0.0.0/0", "198.18.3.0/24", "custom", "i-a", 400, "RouteRuleDestinationOverlapVpc"},
		{"duplicate", "0.0.0.0/0", "203.0.113.0/24", "custom", "i-c", 400, "RouteRuleConflict"},
		{"source outside subnets", "198.18.9.0/24", "192.0.2.0/24", "custom", "i-a", 400, "RouteRuleSourceNotInSubnet"},
		{"bad cidr", "0.0.0.0/0", "192.0.2.1/24", "custom", "i-a", 400, "InvalidParameter"},
		{"bad type", "0.0.0.0/0", "192.0.2.0/24", "sys", "i-a", 400, "RouteNexthopTypeNotSupported"},
		{"unknown instance", "0.0.0.0/0", "192.0.2.0/24", "custom", "i-nope", 400, "RouteNexthopNotFound"},
		{"unknown eni", "0.0.0.0/0", "192.0.2.0/24", "enic", "eni-nope", 400, "RouteNexthopNotFound"},
		{"unknown havip", "0.0.0.0/0", "192.0.2.0/24", "havip", "havip-nope", 400, "RouteNexthopNotFound"},
		{"unknown dedicated-line gateway", "0.0.0.0/0", "192.0.2.0/24", "dcGateway", "dcgw-nope", 400, "RouteNexthopNotFound"},
		{"dedicated-line gateway of other vpc", "0.0.0.0/0", "192.0.2.0/24", "dcGateway", "dcgw-x", 400, "RouteNexthopNotInVpc"},
		{"instance of other vpc", "0.0.0.0/0", "192.0.2.0/24", "custom", "i-x", 400, "RouteNexthopNotInVpc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantServiceError(t, create(tt.src, tt.dst, tt.typ, tt.id), tt.status, tt.code)
		})
	}
	for _, typ := range []string{"havip", "vpn", "nat", "dcGateway", "peerConn"} {
		id := map[string]string{"havip": "havip-seed1", "dcGateway": "dcgw-1"}[typ]
		if id == "" {
			id = typ + "-1"
		}
		dst := map[string]string{"havip": "192.0.2.0/28", "vpn": "192.0.2.16/28", "nat": "192.0.2.32/28", "dcGateway": "192.0.2.48/28", "peerConn": "192.0.2.64/28"}[typ]
		if err := create("0.0.0.0/0", dst, typ, id); err != nil {
			t.Errorf("type %s: %v", typ, err)
		}
	}
	_, err := c.GetRouteTableDetail("rt-nope", "")
	wantServiceError(t, err, 404, "NoSuchObject")
}

func TestSDKEIP(t *testing.T) {
	emu, srv := newTest(t, Options{})
	c := eipClient(t, srv.URL)
	l, err := c.ListEip(&bceeip.ListEipArgs{Eip: "203.0.113.11"})
	if err != nil || len(l.EipList) != 1 || l.EipList[0].Status != "binded" || l.EipList[0].InstanceId != "i-c" {
		t.Fatalf("got %+v %v", l, err)
	}
	err = c.BindEip("203.0.113.11", &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-d"})
	wantServiceError(t, err, 400, "EipAlreadyBinded")
	if err := c.UnBindEip("203.0.113.11", "tok-unbind"); err != nil {
		t.Fatal(err)
	}
	if err := c.UnBindEip("203.0.113.11", "tok-unbind"); err != nil { // replay
		t.Fatal(err)
	}
	err = c.UnBindEip("203.0.113.11", "")
	wantServiceError(t, err, 400, "EipNotBinded")
	// No document lists a HAVIP instance type for the EIP bind: a HAVIP's public IP is bound
	// by the HAVIP API, and EIP answers show it with the HAVIP's id and no instanceType.
	err = c.BindEip("203.0.113.11", &bceeip.BindEipArgs{InstanceType: "HAVIP", InstanceId: "havip-seed1"})
	wantServiceError(t, err, 400, "InvalidParameter")
	if err := havipClient(t, srv.URL).HaVipBindPublicIp(&bcehavip.HaVipBindPublicIpArgs{HaVipId: "havip-seed1", PublicIpAddress: "203.0.113.11"}); err != nil {
		t.Fatal(err)
	}
	if s := emu.State(); s.HaVips[0].PublicIP != "203.0.113.11" {
		t.Fatalf("havip public ip %q", s.HaVips[0].PublicIP)
	}
	l, err = c.ListEip(&bceeip.ListEipArgs{Eip: "203.0.113.11"})
	if err != nil || len(l.EipList) != 1 || l.EipList[0].InstanceType != "" || l.EipList[0].InstanceId != "havip-seed1" || l.EipList[0].Status != "binded" {
		t.Fatalf("EIP on a HAVIP: %+v %v", l, err)
	}
	err = c.BindEip("203.0.113.10", &bceeip.BindEipArgs{InstanceType: "BCC", InstanceId: "i-nope"})
	wantServiceError(t, err, 404, "InstanceNotFound")
	l, err = c.ListEip(&bceeip.ListEipArgs{MaxKeys: 1})
	if err != nil || len(l.EipList) != 1 || !l.IsTruncated || l.NextMarker == "" {
		t.Fatalf("paging got %+v %v", l, err)
	}
	l, err = c.ListEip(&bceeip.ListEipArgs{MaxKeys: 1, Marker: l.NextMarker})
	if err != nil || len(l.EipList) != 1 || l.IsTruncated || l.EipList[0].Eip != "203.0.113.11" {
		t.Fatalf("page 2 got %+v %v", l, err)
	}
}

func TestClientToken(t *testing.T) {
	emu, srv := newTest(t, Options{})
	body := []byte(`{"instanceIds":["i-b"],"instanceType":"SERVER"}`)
	q := map[string]string{"attach": "", "clientToken": "tok-1"}
	first := signedDo(t, srv.URL, "PUT", "/v1/havip/havip-seed1", q, body)
	again := signedDo(t, srv.URL, "PUT", "/v1/havip/havip-seed1", q, body)
	if first.status != 200 || again.status != 200 || string(first.body) != string(again.body) {
		t.Fatalf("got %d %s / %d %s", first.status, first.body, again.status, again.body)
	}
	if n := countChanges(emu, "attach SERVER i-b"); n != 1 {
		t.Fatalf("applied %d times", n)
	}
	// Different body, different path, different query: all mismatches.
	for _, tc := range []struct {
		path string
		q    map[string]string
		body string
	}{
		{"/v1/havip/havip-seed1", q, `{"instanceIds":["i-c"],"instanceType":"SERVER"}`},
		{"/v1/havip/havip-seed1", map[string]string{"detach": "", "clientToken": "tok-1"}, string(body)},
		{"/v1/route/rule/rr-ha1", map[string]string{"switchRouteHA": "", "clientToken": "tok-1"}, ""},
	} {
		r := signedDo(t, srv.URL, "PUT", tc.path, tc.q, []byte(tc.body))
		if r.status != 403 || r.code() != "IdempotentParameterMismatch" {
			t.Fatalf("%s %v: got %d %s", tc.path, tc.q, r.status, r.body)
		}
	}
	var replayed int
	for _, r := range emu.Requests() {
		if r.Replayed {
			replayed++
		}
	}
	if replayed != 1 {
		t.Fatalf("got %d replayed requests", replayed)
	}
}

func TestUnknownRoutes(t *testing.T) {
	_, srv := newTest(t, Options{})
	for _, tc := range []struct {
		method, path string
		q            map[string]string
		status       int
		code         string
	}{
		{"GET", "/v1/nothing", nil, 400, "InvalidURI"},
		{"PUT", "/v1/havip/havip-seed1", nil, 400, "InvalidURI"},
		{"PUT", "/v1/havip/havip-seed1", map[string]string{"attach": "", "detach": ""}, 400, "InvalidURI"},
		{"GET", "/v2/havip", nil, 404, "InvalidVersion"},
		{"GET", "/v1/route", nil, 400, "InvalidParameter"},
		{"GET", "/v1/havip", map[string]string{"maxKeys": "0"}, 400, "InvalidParameter"},
		{"GET", "/v1/havip", map[string]string{"marker": "havip-nope"}, 400, "InvalidParameter"},
	} {
		r := signedDo(t, srv.URL, tc.method, tc.path, tc.q, nil)
		if r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s %s %v: got %d %s, want %d %s", tc.method, tc.path, tc.q, r.status, r.body, tc.status, tc.code)
		}
	}
	_ = http.MethodGet
}
