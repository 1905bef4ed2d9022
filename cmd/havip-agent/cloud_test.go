package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/metrics"
	"github.com/havip-agent/havip-agent/cloud/bce"
	"github.com/havip-agent/havip-agent/cloud/metadata"
)

const (
	roleKeyID  = "AKcmdrole"
	roleSecret = "role-secret-never-shown"
	roleToken  = "role-token-never-shown"
)

// roleMetadata serves instance-role credentials valid for an hour, or HTTP 500 while down.
type roleMetadata struct{ down atomic.Bool }

func (m *roleMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != metadata.RoleCredentialsPath {
		http.NotFound(w, r)
		return
	}
	if m.down.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, `{"accessKeyId":%q,"secretAccessKey":%q,"sessionToken":%q,"expiration":%q}`,
		roleKeyID, roleSecret, roleToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func TestRoleStatus(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   bce.RoleStatus
		want agent.CredentialsStatus
	}{
		{"nothing yet", bce.RoleStatus{}, agent.CredentialsStatus{Kind: agent.CredentialsInstanceRole}},
		{"healthy", bce.RoleStatus{AccessKeyID: "AK1", Expiration: at.Add(time.Hour), LastRefresh: at, NextRefresh: at.Add(5 * time.Minute), FailuresTotal: 3},
			agent.CredentialsStatus{Kind: agent.CredentialsInstanceRole, AccessKeyID: "AK1", Expiration: at.Add(time.Hour), LastRefresh: at, NextRefresh: at.Add(5 * time.Minute), FailuresTotal: 3}},
		{"stale", bce.RoleStatus{AccessKeyID: "AK1", Expiration: at.Add(time.Hour), LastRefresh: at, NextRefresh: at.Add(11 * time.Minute),
			LastError: "boom", LastErrorTime: at.Add(10 * time.Minute), FailingSince: at.Add(5 * time.Minute), Failures: 2, FailuresTotal: 5, Stale: true},
			agent.CredentialsStatus{Kind: agent.CredentialsInstanceRole, AccessKeyID: "AK1", Expiration: at.Add(time.Hour), LastRefresh: at, NextRefresh: at.Add(11 * time.Minute),
				LastError: "boom", LastErrorAt: at.Add(10 * time.Minute), FailingSince: at.Add(5 * time.Minute), Failures: 2, FailuresTotal: 5, Stale: true}},
	}
	for _, tt := range tests {
		if got := roleStatus(tt.in); *got != tt.want {
			t.Errorf("%s: roleStatus = %+v, want %+v", tt.name, *got, tt.want)
		}
	}
}

// TestCredentialState shows what status and metrics get before the cloud client is built, with
// a credentials file, and with the instance role.
func TestCredentialState(t *testing.T) {
	var zero credentialState
	if st := zero.status(); st != nil {
		t.Errorf("before the client: status = %+v, want nil", st)
	}
	if _, ok := zero.metrics(); ok {
		t.Error("before the client: metrics reported")
	}

	var file credentialState
	file.p.Store(&credentialSource{fileKey: "AKfile"})
	if st := file.status(); st == nil || *st != (agent.CredentialsStatus{Kind: agent.CredentialsFile, AccessKeyID: "AKfile"}) {
		t.Errorf("file: status = %+v", st)
	}
	if _, ok := file.metrics(); ok {
		t.Error("file: metrics reported; want none")
	}

	md := &roleMetadata{}
	md.down.Store(true)
	srv := httptest.NewServer(md)
	t.Cleanup(srv.Close)
	src := bce.NewRoleCredentialSource(metadata.New(srv.URL, srv.Client()), nil)
	var role credentialState
	role.p.Store(&credentialSource{role: src})
	if _, err := src.Credentials(context.Background()); err == nil {
		t.Fatal("fetch from a failing metadata service succeeded")
	}
	st := role.status()
	if st == nil || st.Kind != agent.CredentialsInstanceRole || st.AccessKeyID != "" || st.Failures != 1 || !strings.Contains(st.LastError, "HTTP 500") {
		t.Errorf("role, failing: status = %+v", st)
	}
	if m, ok := role.metrics(); !ok || m != (metrics.Credentials{RefreshFailures: 1}) {
		t.Errorf("role, failing: metrics = %+v, %v", m, ok)
	}
}

// TestStatusShowsInstanceRoleCredentials runs the daemon with instance-role credentials and
// reads them back through "status", "status -json" and /metrics.
func TestStatusShowsInstanceRoleCredentials(t *testing.T) {
	md := &roleMetadata{}
	mdSrv := httptest.NewServer(md)
	t.Cleanup(mdSrv.Close)
	cfg := writeConfig(t, goodConfig+fmt.Sprintf(`
[metrics]
listen = "127.0.0.1:0"
[cloud]
provider = "bce"
instance_id = "i-role"
credentials = "instance-role"
endpoint = "http://127.0.0.1:1"
eip_endpoint = "http://127.0.0.1:1"
metadata_endpoint = %q
`, mdSrv.URL))
	sock := filepath.Join(filepath.Dir(cfg), "agent.sock")
	var stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, io.Discard, &stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run exited %d; stderr:\n%s", code, stderr.String())
		}
	}()

	var st agent.Status
	var raw string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		code, out, _ := runCmd("status", "-json", "-config", cfg)
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Credentials != nil && st.Credentials.AccessKeyID != "" {
			raw = out
			break
		}
	}
	c := st.Credentials
	if c == nil || c.Kind != agent.CredentialsInstanceRole || c.AccessKeyID != roleKeyID || c.Expiration.IsZero() || c.NextRefresh.IsZero() || c.LastError != "" {
		t.Fatalf("status -json credentials = %+v (socket %s); stderr:\n%s", c, sock, stderr.String())
	}
	code, text, errText := runCmd("status", "-config", cfg)
	if code != 0 || !strings.Contains(text, "cloud credentials: instance role, access key "+roleKeyID+", expires ") {
		t.Errorf("status: exit %d\n%s%s", code, text, errText)
	}

	addr := regexp.MustCompile(`msg="metrics listening" address=(\S+)`).FindStringSubmatch(stderr.String())
	if addr == nil {
		t.Fatalf("no metrics address in the log:\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + addr[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"\nhavip_agent_cloud_credentials_expiry_timestamp_seconds ",
		"\nhavip_agent_cloud_credentials_refresh_failures_total 0\n",
		"\nhavip_agent_cloud_credentials_stale 0\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	for _, out := range []string{raw, text, string(body), stderr.String()} {
		if strings.Contains(out, roleSecret) || strings.Contains(out, roleToken) {
			t.Errorf("a secret is shown:\n%s", out)
		}
	}
}
