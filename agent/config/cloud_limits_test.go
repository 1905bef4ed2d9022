package config

import (
	"strings"
	"testing"
	"time"
)

// TestCloudLimits: cloud.rate_limit, rate_burst and keep_warm take their defaults, keep_warm =
// "0s" turns the keep-warm reads off, and values out of range are errors naming the key.
func TestCloudLimits(t *testing.T) {
	const base = "[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvips = [\"198.18.0.1/24\"]\nhavip = \"havip-1\"\n[cloud]\ninstance_id = \"i-a\"\n"
	tests := []struct {
		name      string
		extra     string
		wantRate  float64
		wantBurst int
		wantWarm  time.Duration
		wantErr   string
	}{
		{name: "defaults", wantRate: DefaultRateLimit, wantBurst: DefaultRateBurst, wantWarm: DefaultKeepWarm},
		{name: "set", extra: "rate_limit = 2.5\nrate_burst = 4\nkeep_warm = \"1m\"\n", wantRate: 2.5, wantBurst: 4, wantWarm: time.Minute},
		{name: "keep-warm off", extra: "keep_warm = \"0s\"\n", wantRate: DefaultRateLimit, wantBurst: DefaultRateBurst, wantWarm: 0},
		{name: "rate too high", extra: "rate_limit = 5000\n", wantErr: "cloud.rate_limit: 5000 is out of range"},
		{name: "negative burst", extra: "rate_burst = -1\n", wantErr: "cloud.rate_burst: -1 is out of range"},
		{name: "keep-warm too often", extra: "keep_warm = \"100ms\"\n", wantErr: "cloud.keep_warm: 100ms is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("x.toml", []byte(base+tt.extra))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cl := c.Cloud
			if cl.RateLimit != tt.wantRate || cl.RateBurst != tt.wantBurst || cl.KeepWarm.Duration != tt.wantWarm {
				t.Errorf("rate_limit %v, rate_burst %d, keep_warm %v; want %v, %d, %v", cl.RateLimit, cl.RateBurst, cl.KeepWarm.Duration, tt.wantRate, tt.wantBurst, tt.wantWarm)
			}
		})
	}
}
