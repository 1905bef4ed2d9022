package bce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/havip"

	"github.com/havip-agent/havip-agent/cloud/metadata"
)

func writeFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentialsFile(t *testing.T) {
	good := "access_key_id = \"AKfile\"\nsecret_access_key = \"" + testSecret + "\"\n"
	tests := []struct {
		name    string
		text    string
		mode    os.FileMode
		uidSkew int
		want    string // error substring; "" = success
	}{
		{name: "ok", text: good, mode: 0o600},
		{name: "ok with token", text: good + "session_token = \"" + testToken + "\"\n", mode: 0o400},
		{name: "group readable", text: good, mode: 0o640, want: "chmod 600"},
		{name: "world writable", text: good, mode: 0o602, want: "mode 0602"},
		{name: "wrong owner", text: good, mode: 0o600, uidSkew: 1, want: "owned by uid"},
		{name: "bad toml", text: "access_key_id = \"AK\"\nsecret_access_key = " + testSecret + "\n", mode: 0o600, want: ":2: invalid TOML"},
		{name: "unknown key", text: good + "secret_key = \"x\"\n", mode: 0o600, want: "unknown key(s) secret_key"},
		{name: "missing secret", text: "access_key_id = \"AK\"\n", mode: 0o600, want: "secret_access_key is missing"},
		{name: "space", text: "access_key_id = \"AK \"\nsecret_access_key = \"s\"\n", mode: 0o600, want: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.text, tt.mode)
			c, err := LoadCredentialsFileOwnedBy(p, os.Getuid()+tt.uidSkew)
			if tt.want == "" {
				if err != nil || c.AccessKeyID != "AKfile" || c.secretAccessKey() != testSecret {
					t.Fatalf("Load = %v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
	if _, err := LoadCredentialsFileOwnedBy(t.TempDir(), os.Getuid()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
	if os.Getuid() == 0 {
		if _, err := LoadCredentialsFile(writeFile(t, good, 0o600)); err != nil {
			t.Errorf("root-owned 0600 file refused: %v", err)
		}
	} else if _, err := LoadCredentialsFile(writeFile(t, good, 0o600)); err == nil || !strings.Contains(err.Error(), "chown root:root") {
		t.Errorf("non-root-owned file accepted or unhelpful error: %v", err)
	}
}

// A FIFO or a device given as the credentials file is refused at once with an error naming
// the path: opening a FIFO must not wait for a writer, and /dev/zero must not be read.
func TestLoadCredentialsFileSpecial(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "credentials.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, "not a regular file but a FIFO"},
		{"/dev/zero", "not a regular file but a device"},
		{t.TempDir(), "not a regular file but a directory"},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() {
			_, err := LoadCredentialsFileOwnedBy(tt.path, os.Getuid(), 0)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("%s: err = %v, want %q naming the path", tt.path, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			// A deadlock guard, not a timing assertion: the old open blocked forever.
			t.Fatalf("%s: loading the credentials file hangs", tt.path)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := NewCredentials("AKprint", testSecret, testToken)
	if err != nil {
		t.Fatal(err)
	}
	c.Expiration = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	type holder struct {
		c Credentials
		C Credentials
		p *Credentials
	}
	var jsonLog, textLog strings.Builder
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("x", "creds", c, "static", StaticCredentials(c))
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("x", "creds", c, slog.Any("h", holder{c, c, &c}))
	client, err := New(context.Background(), Options{Region: "bj", InstanceID: "i-1"}, StaticCredentials(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{fmt.Sprint(c), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x", c, c, c, c, c, c), fmt.Sprintf("%+v %#v", holder{c, c, &c}, holder{c, c, &c}),
		fmt.Sprintf("%v %+v %#v", StaticCredentials(c), &c, []Credentials{c}), fmt.Sprintf("%+v %#v", client, client), jsonLog.String(), textLog.String()}
	for _, s := range outs {
		if strings.Contains(s, testSecret) || strings.Contains(s, testToken) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if !strings.Contains(outs[0], "AKprint") {
		t.Errorf("String() should show the access key id: %s", outs[0])
	}
}

// fakeMetadata serves instance-role credentials; next holds the access key it hands out.
type fakeMetadata struct {
	mu      sync.Mutex
	ak      string
	exp     time.Time
	fail    bool
	fetches atomic.Int32
}

func (m *fakeMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.URL.Path {
	case metadata.RoleCredentialsPath:
		m.fetches.Add(1)
		if m.fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `{"accessKeyId":%q,"secretAccessKey":%q,"sessionToken":%q,"expiration":%q}`,
			m.ak, testSecret+m.ak, testToken+m.ak, m.exp.UTC().Format(time.RFC3339))
	default:
		http.NotFound(w, r)
	}
}

func TestRoleCredentialsRefresh(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var nowMu sync.Mutex
	now := base
	md := &fakeMetadata{ak: "AKrole1", exp: base.Add(time.Hour)}
	mdSrv := httptest.NewServer(md)
	t.Cleanup(mdSrv.Close)

	f := newFakeBCE(t)
	f.keys["AKrole1"] = testSecret + "AKrole1"
	f.keys["AKrole2"] = testSecret + "AKrole2"
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	lb, logger := newLogBuffer()
	src := NewRoleCredentialSource(metadata.New(mdSrv.URL, mdSrv.Client()), logger)
	src.now = func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	setNow := func(d time.Duration) { nowMu.Lock(); now = base.Add(d); nowMu.Unlock() }
	c, err := New(context.Background(), Options{Endpoint: f.srv.URL, EIPEndpoint: f.srv.URL, InstanceID: "i-self",
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, src, logger)
	if err != nil {
		t.Fatal(err)
	}
	observe := func() recorded {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Observe(ctx, havipRes("havip-1", "")); err != nil {
			t.Fatal(err)
		}
		r := f.requests()
		return r[len(r)-1]
	}
	if r := observe(); r.AccessKeyID != "AKrole1" || r.SecurityToken != testToken+"AKrole1" {
		t.Fatalf("signed with %s / token %q, want AKrole1 and its session token", r.AccessKeyID, r.SecurityToken)
	}
	md.mu.Lock()
	md.ak, md.exp = "AKrole2", base.Add(2*time.Hour)
	md.mu.Unlock()
	setNow(4 * time.Minute) // before 5 minutes: no refresh
	if r := observe(); r.AccessKeyID != "AKrole1" {
		t.Fatalf("refreshed too early: %s", r.AccessKeyID)
	}
	setNow(5 * time.Minute) // 5 minutes after the fetch, long before 80% of the hour: refresh
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = src.Credentials(context.Background()) }()
	}
	wg.Wait()
	if r := observe(); r.AccessKeyID != "AKrole2" {
		t.Fatalf("not refreshed: %s", r.AccessKeyID)
	}
	if n := md.fetches.Load(); n != 2 {
		t.Fatalf("%d credential fetches, want 2 (concurrent callers share one refresh)", n)
	}
	if st := src.Status(); st.AccessKeyID != "AKrole2" || !st.LastRefresh.Equal(base.Add(5*time.Minute)) ||
		!st.NextRefresh.Equal(base.Add(10*time.Minute)) || st.Failures != 0 || st.Stale || st.LastError != "" {
		t.Fatalf("Status() = %+v", st)
	}

	// Failed refreshes keep the still-valid credentials, are logged once and show in Status.
	md.mu.Lock()
	md.fail = true
	md.mu.Unlock()
	for i, d := range []time.Duration{100, 101, 102} {
		setNow(d * time.Minute) // past the refresh point of AKrole2, before its expiry (2:00)
		if r := observe(); r.AccessKeyID != "AKrole2" {
			t.Fatalf("signed with %s, want the still-valid AKrole2", r.AccessKeyID)
		}
		st := src.Status()
		if st.Failures != i+1 || st.FailuresTotal != uint64(i+1) || !st.Stale || !strings.Contains(st.LastError, "HTTP 500") ||
			!st.LastErrorTime.Equal(base.Add(d*time.Minute)) || !st.LastRefresh.Equal(base.Add(5*time.Minute)) ||
			!st.NextRefresh.Equal(base.Add(d*time.Minute+30*time.Second)) {
			t.Fatalf("after failure %d: Status() = %+v", i+1, st)
		}
	}
	if n := strings.Count(lb.String(), "keeping the current ones"); n != 1 {
		t.Fatalf("the failed refreshes were logged %d times, want once:\n%s", n, lb)
	}
	// Recovery: logged once, the failure count reset, the total kept.
	md.mu.Lock()
	md.fail, md.ak, md.exp = false, "AKrole1", base.Add(3*time.Hour)
	md.mu.Unlock()
	setNow(103 * time.Minute)
	if r := observe(); r.AccessKeyID != "AKrole1" {
		t.Fatalf("signed with %s after recovery, want AKrole1", r.AccessKeyID)
	}
	if st := src.Status(); st.Failures != 0 || st.FailuresTotal != 3 || st.Stale || st.LastError != "" {
		t.Fatalf("after recovery: Status() = %+v", st)
	}
	if n := strings.Count(lb.String(), "refreshed again"); n != 1 {
		t.Fatalf("recovery logged %d times, want once:\n%s", n, lb)
	}

	md.mu.Lock()
	md.fail = true
	md.mu.Unlock()
	setNow(4 * time.Hour) // expired and no refresh possible
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Observe(ctx, havipRes("havip-1", "")); err == nil {
		t.Fatal("Observe with expired credentials succeeded")
	} else if !strings.Contains(err.Error(), "instance-role credentials") {
		t.Fatalf("err = %v", err)
	}
	if st := src.Status(); st.Stale || st.Failures == 0 {
		t.Fatalf("expired: Status() = %+v, want failures and not stale", st)
	}
	if s := lb.String(); strings.Contains(s, testSecret) || strings.Contains(s, testToken) {
		t.Fatalf("secret in logs:\n%s", s)
	}
}

func TestRefreshTime(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life, want time.Duration
	}{
		{time.Hour, 5 * time.Minute},
		{6 * time.Minute, time.Minute},
		{8 * time.Minute, 3 * time.Minute},
		{10 * time.Minute, 5 * time.Minute},
		{4 * time.Minute, 192 * time.Second},
		{time.Minute, 48 * time.Second},
	}
	for _, tt := range tests {
		if got := refreshTime(now, now.Add(tt.life)).Sub(now); got != tt.want {
			t.Errorf("life %v: refresh after %v, want %v", tt.life, got, tt.want)
		}
	}
}

// TestRoleCredentialsLogOncePerStreak shows that a run of failed refreshes logs one line when
// it starts, one when the credentials it kept expire, and one on recovery, however often the
// refresh is tried, and that Status says since when the last good credentials are in use.
func TestRoleCredentialsLogOncePerStreak(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	md := &fakeMetadata{ak: "AKstreak1", exp: base.Add(time.Hour)}
	mdSrv := httptest.NewServer(md)
	t.Cleanup(mdSrv.Close)
	var lb logBuffer
	src := NewRoleCredentialSource(metadata.New(mdSrv.URL, mdSrv.Client()), slog.New(slog.NewTextHandler(&lb, nil)))
	now := base
	src.now = func() time.Time { return now }
	setFail := func(fail bool) { md.mu.Lock(); md.fail = fail; md.mu.Unlock() }
	ctx := context.Background()
	if _, err := src.Credentials(ctx); err != nil {
		t.Fatal(err)
	}
	setFail(true)
	steps := []struct {
		at        time.Duration
		wantErr   bool
		wantStale bool
	}{
		{58 * time.Minute, false, true},
		{58*time.Minute + 30*time.Second, false, true},
		{59 * time.Minute, false, true},
		// Past expiry less the margin: nothing valid is left.
		{59*time.Minute + 40*time.Second, true, false},
		{60*time.Minute + 10*time.Second, true, false},
		{61 * time.Minute, true, false},
	}
	for _, s := range steps {
		now = base.Add(s.at)
		_, err := src.Credentials(ctx)
		if gotErr := err != nil; gotErr != s.wantErr {
			t.Fatalf("at %v: err = %v, want error %v", s.at, err, s.wantErr)
		}
		st := src.Status()
		if st.Stale != s.wantStale || !st.FailingSince.Equal(base.Add(58*time.Minute)) || !st.LastErrorTime.Equal(now) {
			t.Fatalf("at %v: Status() = %+v, want stale %v, failing since 00:58", s.at, st, s.wantStale)
		}
	}
	md.mu.Lock()
	md.fail, md.ak, md.exp = false, "AKstreak2", base.Add(2*time.Hour)
	md.mu.Unlock()
	now = base.Add(62 * time.Minute)
	if _, err := src.Credentials(ctx); err != nil {
		t.Fatal(err)
	}
	if st := src.Status(); !st.FailingSince.IsZero() || st.Failures != 0 || st.FailuresTotal != uint64(len(steps)) {
		t.Fatalf("after recovery: Status() = %+v", st)
	}
	var got []string
	for line := range strings.Lines(lb.String()) {
		_, msg, _ := strings.Cut(line, "msg=")
		msg, _, _ = strings.Cut(strings.TrimPrefix(msg, `"`), `"`)
		got = append(got, msg)
	}
	want := []string{
		"instance-role credentials fetched",
		"refreshing instance-role credentials failed; keeping the current ones while they are valid, retrying",
		"the instance-role credentials kept while refreshing fails have expired; none are valid, retrying",
		"instance-role credentials refreshed again",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log lines at info and above:\n%q\nwant:\n%q\n%s", got, want, lb.String())
	}
}

// blockingFetcher answers a fetch only when release is closed.
type blockingFetcher struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingFetcher) RoleCredentials(ctx context.Context) (metadata.RoleCredentials, error) {
	close(b.started)
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return metadata.RoleCredentials{}, errors.New("metadata service did not answer")
}

// TestRoleStatusDoesNotWaitForARefresh shows that Status, which status and every metrics
// scrape call, answers while a refresh waits for the metadata service.
func TestRoleStatusDoesNotWaitForARefresh(t *testing.T) {
	f := &blockingFetcher{started: make(chan struct{}), release: make(chan struct{})}
	src := NewRoleCredentialSource(f, nil)
	done := make(chan struct{})
	go func() { defer close(done); _, _ = src.Credentials(context.Background()) }()
	<-f.started
	got := make(chan RoleStatus, 1)
	go func() { got <- src.Status() }()
	select {
	case st := <-got:
		if st.AccessKeyID != "" || st.Failures != 0 {
			t.Errorf("Status() during the first fetch = %+v, want nothing yet", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("Status() waits for the refresh in flight")
	}
	close(f.release)
	<-done
	if st := src.Status(); st.Failures != 1 || st.LastError == "" {
		t.Errorf("Status() after the failed fetch = %+v, want one failure", st)
	}
}
