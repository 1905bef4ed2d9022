package bce

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"go.uber.org/goleak"
)

// contractSeen collects the contract operations the tests' requests matched, so that TestMain
// can tell an entry no test exercises.
var contractSeen = struct {
	sync.Mutex
	ops map[string]bool
}{ops: map[string]bool{}}

// TestMain runs the tests, then fails if a goroutine outlives them (a call the provider
// started must end with it) and, when all of them ran, if an entry of the contract was never
// sent: an entry no request matches is stale or untested.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// The SDK's package-level logger runs a writer goroutine for the
		// life of the process, started before any test.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/baidubce/bce-sdk-go/util/log.NewLogger.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	if f := flag.Lookup("test.run"); code == 0 && f != nil && f.Value.String() == "" {
		var missing []string
		for _, r := range Contract {
			if !contractSeen.ops[r.Op] {
				missing = append(missing, r.Op)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "contract entries no test sent: %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// checkContract fails t for every request not in the contract.
func checkContract(t *testing.T, what string, method, path, rawQuery string, fields []string) {
	t.Helper()
	r, err := CheckRequest(method, path, rawQuery, fields)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	contractSeen.Lock()
	contractSeen.ops[r.Op] = true
	contractSeen.Unlock()
}

// checkEmulatorContract checks every request the emulator's log holds (each request that
// reached it, answered or not).
func checkEmulatorContract(t *testing.T, emu *emulator.Emulator) {
	t.Helper()
	for _, r := range emu.Requests() {
		checkContract(t, "request to the emulator", r.Method, r.Path, r.Query, r.BodyFields)
	}
}

// checkFakeContract checks every request the strict fake recorded.
func checkFakeContract(t *testing.T, f *fakeBCE) {
	t.Helper()
	for _, r := range f.requests() {
		var fields []string
		if strings.TrimSpace(r.Body) != "" {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(r.Body), &m) != nil {
				fields = []string{emulator.BodyNotObject}
			}
			for k := range m {
				fields = append(fields, k)
			}
			sort.Strings(fields)
		}
		checkContract(t, "request to the fake", r.Method, r.Path, r.RawQuery, fields)
	}
}

func TestContractRendering(t *testing.T) {
	goldenFile(t, "testdata/api.md", RenderContract())
}

func TestCheckRequest(t *testing.T) {
	tests := []struct {
		name                  string
		method, path, query   string
		body                  []string
		wantOp, wantErrSubstr string
	}{
		{"detail", "GET", "/v1/havip/havip-1", "", nil, OpHAVIPDetail, ""},
		{"attach", "PUT", "/v1/havip/havip-1", "attach&clientToken=t", []string{"instanceIds", "instanceType"}, OpHAVIPAttach, ""},
		{"switch", "PUT", "/v1/route/rule/rr-1", "switchRouteHA=&clientToken=t", nil, OpRouteRuleSwitch, ""},
		{"switch with a body", "PUT", "/v1/route/rule/rr-1", "switchRouteHA", []string{"nexthopId"}, OpRouteRuleSwitch, "body field(s) nexthopId"},
		{"update", "PUT", "/v1/route/rule/rr-1", "clientToken=t", []string{"destinationAddress", "nexthopId", "sourceAddress"}, OpRouteRuleUpdate, ""},
		{"update with nexthopType", "PUT", "/v1/route/rule/rr-1", "clientToken=t", []string{"nexthopId", "nexthopType"}, OpRouteRuleUpdate, "body field(s) nexthopType"},
		{"update with routeRuleId", "PUT", "/v1/route/rule/rr-1", "", []string{"nexthopId", "routeRuleId"}, OpRouteRuleUpdate, "routeRuleId"},
		{"unknown flag", "GET", "/v1/route/rule", "routeTableId=rt-1&vpcId=v", nil, OpRouteRuleList, "query parameter(s) vpcId"},
		{"eip of a node", "GET", "/v1/eip", "instanceType=BCC&instanceId=i-1", nil, OpEIPList, ""},
		{"old role path", "GET", "/1.0/meta-data/iam/security-credentials/", "", nil, "", "not in the contract"},
		{"delete", "DELETE", "/v1/havip/havip-1", "", nil, "", "not in the contract"},
		{"empty id", "GET", "/v1/subnet/", "", nil, "", "not in the contract"},
		{"not an object", "PUT", "/v1/eip/1.2.3.4", "bind", []string{emulator.BodyNotObject}, OpEIPBind, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckRequest(tt.method, tt.path, tt.query, tt.body)
			if got.Op != tt.wantOp {
				t.Errorf("op = %q, want %q", got.Op, tt.wantOp)
			}
			if (tt.wantErrSubstr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErrSubstr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErrSubstr)
			}
		})
	}
}
