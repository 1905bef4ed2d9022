package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/cloud/bce"
	"github.com/havip-agent/havip-agent/cloud/metadata"
)

// cloudClient builds the BCE client the configuration asks for; nil when
// the agent runs local only. The returned function runs background work
// (instance-role refresh) until its context ends.
func cloudClient(ctx context.Context, cfg *config.Config, log *slog.Logger, onRequest func(op, code string, d time.Duration)) (*bce.Client, func(context.Context), error) {
	cl := cfg.Cloud
	if !cl.Enabled() {
		return nil, func(context.Context) {}, nil
	}
	md := metadata.New(cl.MetadataEndpoint, nil)
	var (
		creds bce.CredentialSource
		bg    = func(context.Context) {}
	)
	if cl.Credentials == config.CredentialsInstanceRole {
		src := bce.NewRoleCredentialSource(md, log)
		creds, bg = src, src.Run
	} else {
		c, err := bce.LoadCredentialsFile(cl.Credentials)
		if err != nil {
			return nil, nil, fmt.Errorf("cloud.credentials: %w", err)
		}
		creds = bce.StaticCredentials(c)
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
	}, creds, log)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	return client, bg, nil
}

// preflight runs "config check -cloud": read-only calls that show whether
// the claims would work.
func preflight(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, bool, error) {
	client, _, err := cloudClient(ctx, cfg, log, nil)
	if err != nil {
		return "", false, err
	}
	if client == nil {
		return "no [cloud] section (or provider = \"none\"): nothing to check in the cloud\n", true, nil
	}
	var res = agent.Resources(cfg)
	r := client.Preflight(ctx, res)
	return r.String(), !r.Failed(), nil
}
