package bce

import (
	"strings"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/vpc"
)

func FuzzParseCredentials(f *testing.F) {
	f.Add("access_key_id = \"AK\"\nsecret_access_key = \"SK\"\n")
	f.Add("access_key_id = \"AK\"\nsecret_access_key = SKbare\n")
	f.Add("[x]\ny = 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCredentials("f", []byte(text))
		if err != nil {
			// The error may name keys and lines, never a value: check the longest quoted value.
			for _, part := range strings.Split(text, "\"") {
				if len(part) >= 12 && strings.Contains(err.Error(), part) && !strings.Contains("access_key_id secret_access_key session_token", part) {
					t.Fatalf("error %q quotes input %q", err, part)
				}
			}
			return
		}
		if c.AccessKeyID == "" || c.secretAccessKey() == "" {
			t.Fatalf("accepted incomplete credentials from %q", text)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	f.Add("3")
	f.Add("Wed, 01 Jan 2025 00:00:10 GMT")
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, time.Unix(0, 0)); d < 0 || d > time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add("0.0.0.0/0", "ha:active", "custom", "0.0.0.0/0", "ha:standby", "0.0.0.0/0")
	f.Add("10.0.0.0/8", "", "havip", "10.0.0.1", "ecmp", "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, d1, p1, t1, d2, p2, dest string) {
		rules := []vpc.RouteRule{
			{RouteRuleId: "a", DestinationAddress: d1, PathType: p1, NexthopType: vpc.NexthopType(t1)},
			{RouteRuleId: "b", DestinationAddress: d2, PathType: p2},
		}
		st, err := classify("op", rules, dest)
		if err == nil && st.shape != "ha" && st.shape != "single" && st.shape != "havip" {
			t.Fatalf("shape %q without error", st.shape)
		}
	})
}
