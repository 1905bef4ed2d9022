package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/metrics"
	"github.com/havip-agent/havip-agent/cloud/bce"
	"github.com/havip-agent/havip-agent/cloud/metadata"
)

// cloudClient builds the BCE client the configuration asks for; nil when
// the agent runs local only. The returned function runs background work
// (instance-role refresh) until its context ends. Once the client is built,
// creds, when not nil, reports its credential source.
func cloudClient(ctx context.Context, cfg *config.Config, log *slog.Logger, onRequest func(op, code string, d time.Duration), creds *credentialState) (*bce.Client, func(context.Context), error) {
	cl := cfg.Cloud
	if !cl.Enabled() {
		return nil, func(context.Context) {}, nil
	}
	md := metadata.New(cl.MetadataEndpoint, nil)
	var (
		source bce.CredentialSource
		bg     = func(context.Context) {}
		origin credentialSource
	)
	if cl.Credentials == config.CredentialsInstanceRole {
		src := bce.NewRoleCredentialSource(md, log)
		source, bg, origin.role = src, src.Run, src
	} else {
		c, err := bce.LoadCredentialsFile(cl.Credentials)
		if err != nil {
			return nil, nil, fmt.Errorf("cloud.credentials: %w", err)
		}
		source, origin.fileKey = bce.StaticCredentials(c), c.AccessKeyID
	}
	client, err := bce.New(ctx, bce.Options{
		Region:       cl.Region,
		Endpoint:     cl.Endpoint,
		EIPEndpoint:  cl.EIPEndpoint,
		InstanceID:   cl.InstanceID,
		Identity:     md,
		ENIID:        cl.ENIID,
		InstanceType: cl.InstanceType,
		Timeout:      cl.Timeout.Duration,
		// Bounded: a claim that keeps failing is tried again by the
		// reconcile loop with a new token.
		MaxAttempts: 5,
		DryRun:      cl.DryRun,
		OnRequest:   onRequest,
		RateLimit:   cl.RateLimit,
		RateBurst:   cl.RateBurst,
		KeepWarm:    keepWarm(cl.KeepWarm.Duration),
		// The failover history keeps every mutating call of a claim.
		OnCall: agent.CloudCall,
	}, source, log)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	if creds != nil {
		creds.p.Store(&origin)
	}
	// A node that is not MASTER reads its resources at a low rate: its next claim starts
	// from that picture over a warm connection. The daemon tells the client which resources
	// (cloud.Watcher) once it is ready and after every reload.
	refresh := bg
	bg = func(ctx context.Context) {
		done := make(chan struct{})
		go func() { defer close(done); client.KeepWarm(ctx) }()
		refresh(ctx)
		<-done
	}
	return client, bg, nil
}

// keepWarm is the client's keep-warm interval for cloud.keep_warm: "0s" turns the reads off.
func keepWarm(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// credentialState reports the credential source of the cloud client, once
// built, to status and metrics. The zero value reports nothing.
type credentialState struct {
	p atomic.Pointer[credentialSource]
}

// credentialSource is where the cloud client's credentials come from: the
// instance role, or else a file holding the access key fileKey.
type credentialSource struct {
	role    *bce.RoleCredentialSource
	fileKey string
}

// status is what "havip-agent status" shows of the credentials; nil before
// the cloud client is built.
func (c *credentialState) status() *agent.CredentialsStatus {
	src := c.p.Load()
	switch {
	case src == nil:
		return nil
	case src.role == nil:
		return &agent.CredentialsStatus{Kind: agent.CredentialsFile, AccessKeyID: src.fileKey}
	}
	return roleStatus(src.role.Status())
}

// metrics is what the credential metrics export; false (no series) for a
// credentials file or before the cloud client is built.
func (c *credentialState) metrics() (metrics.Credentials, bool) {
	src := c.p.Load()
	if src == nil || src.role == nil {
		return metrics.Credentials{}, false
	}
	st := src.role.Status()
	return metrics.Credentials{Expiration: st.Expiration, RefreshFailures: st.FailuresTotal, Stale: st.Stale}, true
}

// roleStatus is the status form of what the instance-role source reports.
func roleStatus(st bce.RoleStatus) *agent.CredentialsStatus {
	return &agent.CredentialsStatus{
		Kind:          agent.CredentialsInstanceRole,
		AccessKeyID:   st.AccessKeyID,
		Expiration:    st.Expiration,
		LastRefresh:   st.LastRefresh,
		NextRefresh:   st.NextRefresh,
		LastError:     st.LastError,
		LastErrorAt:   st.LastErrorTime,
		FailingSince:  st.FailingSince,
		Failures:      st.Failures,
		FailuresTotal: st.FailuresTotal,
		Stale:         st.Stale,
	}
}

// preflight runs "config check -cloud": read-only calls that show whether
// the claims would work.
func preflight(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, bool, error) {
	client, _, err := cloudClient(ctx, cfg, log, nil, nil)
	if err != nil {
		return "", false, err
	}
	if client == nil {
		return "no [cloud] section (or provider = \"none\"): nothing to check in the cloud\n", true, nil
	}
	var res = cfg.CloudResources()
	r := client.Preflight(ctx, res)
	return r.String(), !r.Failed(), nil
}
