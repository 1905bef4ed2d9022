package bce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/havip-agent/havip-agent/cloud/metadata"
)

// Credentials are an access key pair, optionally with an STS session token. The secret parts
// are reachable only inside this package and are never printed by fmt or slog.
type Credentials struct {
	AccessKeyID string
	// Expiration is when temporary credentials stop working; zero for a permanent key.
	Expiration time.Time
	// s is a pointer so that printing a struct holding Credentials in an unexported field
	// shows an address, not the secret.
	s *secret
}

type secret struct{ secretAccessKey, sessionToken string }

// NewCredentials returns credentials made of an access key id, its secret and an optional
// session token.
func NewCredentials(accessKeyID, secretAccessKey, sessionToken string) (Credentials, error) {
	if accessKeyID == "" {
		return Credentials{}, errors.New("credentials: access key id is empty")
	}
	if secretAccessKey == "" {
		return Credentials{}, errors.New("credentials: secret access key is empty")
	}
	return Credentials{AccessKeyID: accessKeyID, s: &secret{secretAccessKey, sessionToken}}, nil
}

func (c Credentials) secretAccessKey() string {
	if c.s == nil {
		return ""
	}
	return c.s.secretAccessKey
}

func (c Credentials) sessionToken() string {
	if c.s == nil {
		return ""
	}
	return c.s.sessionToken
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	token := "none"
	if c.sessionToken() != "" {
		token = "[redacted]"
	}
	s := "Credentials{AccessKeyID: " + c.AccessKeyID + ", SecretAccessKey: [redacted], SessionToken: " + token
	if !c.Expiration.IsZero() {
		s += ", Expiration: " + c.Expiration.UTC().Format(time.RFC3339)
	}
	return s + "}"
}

// GoString is String: %#v must not print the secrets either.
func (c Credentials) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the credentials without their secrets.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("access_key_id", c.AccessKeyID)}
	if !c.Expiration.IsZero() {
		attrs = append(attrs, slog.Time("expiration", c.Expiration))
	}
	return slog.GroupValue(attrs...)
}

// CredentialSource supplies the credentials each request is signed with. It is consulted for
// every attempt, so refreshed credentials are picked up by the next request.
type CredentialSource interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// StaticCredentials is a CredentialSource that always returns the same credentials.
type StaticCredentials Credentials

// Credentials returns c.
func (c StaticCredentials) Credentials(context.Context) (Credentials, error) {
	return Credentials(c), nil
}

// String describes the credentials without their secrets.
func (c StaticCredentials) String() string { return Credentials(c).String() }

// Format prints String for every verb.
func (c StaticCredentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// maxCredentialsFile bounds what LoadCredentialsFile reads.
const maxCredentialsFile = 64 << 10

// LoadCredentialsFile reads a TOML credentials file with the keys access_key_id,
// secret_access_key and the optional session_token. It refuses a file that is not a regular
// file, that group or others may read or write, or that is not owned by the user the agent runs
// as (root, or the havip-agent service user): such a file may have leaked its secret, and the
// error says how to fix it.
func LoadCredentialsFile(path string) (Credentials, error) {
	owners := []int{os.Geteuid()}
	if owners[0] == 0 {
		// Root (an operator's "config check -cloud") may read the
		// service user's file.
		if u, err := user.Lookup(ServiceUser); err == nil {
			if id, err := strconv.Atoi(u.Uid); err == nil {
				owners = append(owners, id)
			}
		}
	} else {
		owners = append(owners, 0)
	}
	return LoadCredentialsFileOwnedBy(path, owners...)
}

// ServiceUser is the user the packaged agent runs as.
const ServiceUser = "havip-agent"

// LoadCredentialsFileOwnedBy is LoadCredentialsFile accepting a file owned by any of uids (the
// first is named in the fix); tests running unprivileged use it.
func LoadCredentialsFileOwnedBy(path string, uids ...int) (Credentials, error) {
	if len(uids) == 0 {
		uids = []int{os.Geteuid()}
	}
	uid := uids[0]
	fix := fmt.Sprintf("fix: chown root:root %s && chmod 600 %s", path, path)
	if uid != 0 {
		owner := strconv.Itoa(uid)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		fix = fmt.Sprintf("fix: chown %s %s && chmod 600 %s", owner, path, path)
	}
	// Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer;
	// the check of the opened file below then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	defer f.Close()
	// Check the opened file, not the path, so that a file swapped in between is not read.
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Credentials{}, fmt.Errorf("credentials file %s: not a regular file but %s", path, fileKind(fi.Mode()))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Credentials{}, fmt.Errorf("credentials file %s: mode %04o lets group or others access it; %s", path, perm, fix)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !slices.Contains(uids, int(st.Uid)) {
		return Credentials{}, fmt.Errorf("credentials file %s: owned by uid %d, want uid %d; %s", path, st.Uid, uid, fix)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if len(b) > maxCredentialsFile {
		return Credentials{}, fmt.Errorf("credentials file %s: larger than %d bytes", path, maxCredentialsFile)
	}
	return ParseCredentials(path, b)
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	default:
		return "a special file"
	}
}

// ParseCredentials parses the TOML text of a credentials file; name is used in errors. Its errors
// never quote the text, which holds secrets.
func ParseCredentials(name string, b []byte) (Credentials, error) {
	var doc struct {
		AccessKeyID     string `toml:"access_key_id"`
		SecretAccessKey string `toml:"secret_access_key"`
		SessionToken    string `toml:"session_token"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&doc)
	if err != nil {
		// The parser's message may quote the offending text, which may be the secret.
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Credentials{}, fmt.Errorf("credentials file %s:%d: invalid TOML", name, pe.Position.Line)
		}
		return Credentials{}, fmt.Errorf("credentials file %s: invalid TOML (keys must be strings)", name)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, 0, len(und))
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return Credentials{}, fmt.Errorf("credentials file %s: unknown key(s) %s (want access_key_id, secret_access_key, session_token)",
			name, strings.Join(keys, ", "))
	}
	for _, f := range []struct{ key, v string }{{"access_key_id", doc.AccessKeyID}, {"secret_access_key", doc.SecretAccessKey}, {"session_token", doc.SessionToken}} {
		if strings.TrimSpace(f.v) != f.v || strings.ContainsAny(f.v, " \t\r\n") {
			return Credentials{}, fmt.Errorf("credentials file %s: %s contains white space", name, f.key)
		}
	}
	if doc.AccessKeyID == "" {
		return Credentials{}, fmt.Errorf("credentials file %s: access_key_id is missing", name)
	}
	if doc.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("credentials file %s: secret_access_key is missing", name)
	}
	return NewCredentials(doc.AccessKeyID, doc.SecretAccessKey, doc.SessionToken)
}

// RoleFetcher fetches instance-role credentials; *metadata.Client implements it.
type RoleFetcher interface {
	RoleCredentials(ctx context.Context) (metadata.RoleCredentials, error)
}

// RoleStatus is what a RoleCredentialSource reports about its refreshes, for status and
// metrics. It holds no secret.
type RoleStatus struct {
	// AccessKeyID identifies the credentials in use, "" before the first successful fetch.
	AccessKeyID string
	// Expiration is when the credentials in use expire.
	Expiration time.Time
	// LastRefresh is when credentials were last fetched successfully; zero before the first.
	LastRefresh time.Time
	// NextRefresh is when the next refresh is due.
	NextRefresh time.Time
	// LastError is the error of the last refresh when it failed, "" when it succeeded.
	LastError string
	// LastErrorTime is when LastError happened.
	LastErrorTime time.Time
	// FailingSince is when the first of the refreshes failing in a row happened, zero when
	// the last refresh succeeded: the last good credentials have been used since then.
	FailingSince time.Time
	// Failures counts the refreshes that failed in a row since the last success.
	Failures int
	// FailuresTotal counts every failed refresh since the source was made (a counter).
	FailuresTotal uint64
	// Stale reports that the last refresh failed while earlier credentials are still in use
	// (they are valid until Expiration).
	Stale bool
}

// RoleCredentialSource is a CredentialSource backed by the instance role. It refreshes the
// credentials well before they expire and at least every 5 minutes (the IAM role page says the
// temporary credentials are renewed every 5 minutes): at 80% of their lifetime, no later than 5
// minutes before expiry, and no later than 5 minutes after the last refresh. Credentials
// refreshes on demand when due; Run refreshes ahead in the background so that a claim rarely
// waits for the metadata service. A failed refresh keeps the last good credentials while they
// are valid and shows in Status; a run of failures is logged once when it starts, once if the
// kept credentials expire during it, and once on recovery. It is safe for concurrent use.
type RoleCredentialSource struct {
	fetch  RoleFetcher
	logger *slog.Logger
	now    func() time.Time
	// retryWait is how long to wait after a failed refresh while the old credentials are valid.
	retryWait time.Duration

	// mu is held during a refresh, so that concurrent callers share one fetch.
	mu        sync.Mutex
	cur       Credentials
	refreshAt time.Time
	status    RoleStatus
	// published is what Status answers, replaced after every change under mu: reading it
	// does not wait for a fetch in flight.
	published atomic.Pointer[RoleStatus]
}

// NewRoleCredentialSource returns a source fetching from f.
func NewRoleCredentialSource(f RoleFetcher, logger *slog.Logger) *RoleCredentialSource {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RoleCredentialSource{fetch: f, logger: logger, now: time.Now, retryWait: 30 * time.Second}
}

// Refresh bounds of instance-role credentials.
const (
	// expiryMargin is how long before expiry credentials count as expired: a request signed
	// now must still be valid when it arrives.
	expiryMargin = 30 * time.Second
	// maxRefreshInterval is the longest time between two refreshes: the metadata service
	// renews the credentials at that period.
	maxRefreshInterval = 5 * time.Minute
)

// Status reports the refreshes so far. It makes no call and does not wait for a refresh in
// flight.
func (s *RoleCredentialSource) Status() RoleStatus {
	if st := s.published.Load(); st != nil {
		return *st
	}
	return RoleStatus{}
}

// publishLocked makes Status answer the current state.
func (s *RoleCredentialSource) publishLocked() {
	st := s.status
	st.AccessKeyID, st.Expiration, st.NextRefresh = s.cur.AccessKeyID, s.cur.Expiration, s.refreshAt
	s.published.Store(&st)
}

// Credentials returns the current credentials, refreshing them first when due. When a refresh
// fails but the current credentials are still valid, it returns them (and Status says so).
func (s *RoleCredentialSource) Credentials(ctx context.Context) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	valid := s.cur.AccessKeyID != "" && now.Before(s.cur.Expiration.Add(-expiryMargin))
	if now.Before(s.refreshAt) {
		if valid {
			return s.cur, nil
		}
		if s.status.LastError != "" {
			// The service failed a moment ago: every request asking again would hammer it.
			return Credentials{}, fmt.Errorf("no valid instance-role credentials (next try at %s): %s",
				s.refreshAt.UTC().Format(time.RFC3339), s.status.LastError)
		}
	}
	err := s.refreshLocked(ctx, now)
	if err == nil {
		return s.cur, nil
	}
	// A caller that gave up (a claim cancelled, a stop) says nothing about the service.
	if ctx.Err() == nil {
		s.failedLocked(now, err, valid)
	}
	if valid {
		return s.cur, nil
	}
	return Credentials{}, err
}

// failedLocked records a failed refresh; valid tells whether the earlier credentials are still
// in use. Of a run of failures it logs the first and the one at which the credentials kept so
// far expired, so that the log shows each change of what the agent signs with, once.
func (s *RoleCredentialSource) failedLocked(now time.Time, err error, valid bool) {
	st := &s.status
	wasStale := st.Stale
	st.Failures++
	st.FailuresTotal++
	if st.Failures == 1 {
		st.FailingSince = now
	}
	st.LastError, st.LastErrorTime, st.Stale = err.Error(), now, valid
	s.refreshAt = now.Add(s.retryWait)
	if valid && s.refreshAt.After(s.cur.Expiration.Add(-expiryMargin)) {
		s.refreshAt = s.cur.Expiration.Add(-expiryMargin)
	}
	lvl, msg := slog.LevelDebug, "refreshing instance-role credentials failed again"
	switch {
	case st.Failures > 1 && wasStale && !valid:
		lvl, msg = slog.LevelError, "the instance-role credentials kept while refreshing fails have expired; none are valid, retrying"
	case st.Failures == 1:
		lvl = slog.LevelWarn
		msg = "refreshing instance-role credentials failed; keeping the current ones while they are valid, retrying"
		if !valid {
			lvl, msg = slog.LevelError, "refreshing instance-role credentials failed and none are valid; retrying"
		}
	}
	s.publishLocked()
	s.logger.Log(context.Background(), lvl, msg, "err", err, "expiration", s.cur.Expiration, "failures", st.Failures, "retry_at", s.refreshAt)
}

func (s *RoleCredentialSource) refreshLocked(ctx context.Context, now time.Time) error {
	rc, err := s.fetch.RoleCredentials(ctx)
	if err != nil {
		return fmt.Errorf("instance-role credentials: %w", err)
	}
	if !rc.Expiration.After(now.Add(expiryMargin)) {
		return fmt.Errorf("instance-role credentials: expiration %s is already past", rc.Expiration.UTC().Format(time.RFC3339))
	}
	c, err := NewCredentials(rc.AccessKeyID, rc.SecretAccessKey(), rc.SessionToken())
	if err != nil {
		return fmt.Errorf("instance-role credentials: %w", err)
	}
	c.Expiration = rc.Expiration
	first := s.cur.AccessKeyID == ""
	failures := s.status.Failures
	s.cur = c
	s.refreshAt = refreshTime(now, rc.Expiration)
	s.status.LastRefresh, s.status.LastError, s.status.Failures, s.status.Stale = now, "", 0, false
	s.status.FailingSince = time.Time{}
	s.publishLocked()
	switch {
	case failures > 0:
		s.logger.Info("instance-role credentials refreshed again", "credentials", c, "failures", failures, "refresh_at", s.refreshAt)
	case first:
		s.logger.Info("instance-role credentials fetched", "credentials", c, "refresh_at", s.refreshAt)
	default:
		s.logger.Debug("instance-role credentials refreshed", "credentials", c, "refresh_at", s.refreshAt)
	}
	return nil
}

// refreshTime is when credentials obtained at now and expiring at exp should be replaced: at
// 80% of their lifetime, no later than 5 minutes before expiry when the lifetime allows, and no
// later than 5 minutes from now.
func refreshTime(now, exp time.Time) time.Time {
	life := exp.Sub(now)
	at := now.Add(life * 8 / 10)
	if early := exp.Add(-5 * time.Minute); early.Before(at) && early.After(now) {
		at = early
	}
	if latest := now.Add(maxRefreshInterval); latest.Before(at) {
		at = latest
	}
	return at
}

// Run refreshes the credentials ahead of time until ctx ends.
func (s *RoleCredentialSource) Run(ctx context.Context) {
	for {
		s.mu.Lock()
		wait := s.refreshAt.Sub(s.now())
		s.mu.Unlock()
		if wait < 0 {
			wait = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A failure is recorded, logged and rescheduled by Credentials.
		_, _ = s.Credentials(ctx)
	}
}
