package cloud

import (
	"strings"
	"testing"
)

func TestASCIIName(t *testing.T) {
	for _, tc := range []struct {
		s        string
		min, max int
		extra    string
		want     bool
	}{
		{"i7vEtzxRc", 1, 64, "", true},
		{"", 1, 64, "", false},
		{strings.Repeat("a", 64), 1, 64, "", true},
		{strings.Repeat("a", 65), 1, 64, "", false},
		{"role_a.b@c+d=e,f-g", 1, 128, "_.@+=,-", true},
		{"role/../x", 1, 128, "_.@+=,-", false},
		{"é", 1, 64, "", false},
		{"a b", 1, 64, "", false},
		{"VI_1", 1, 64, "_.:-", true},
	} {
		if got := ASCIIName(tc.s, tc.min, tc.max, tc.extra); got != tc.want {
			t.Errorf("ASCIIName(%q, %d, %d, %q) = %v, want %v", tc.s, tc.min, tc.max, tc.extra, got, tc.want)
		}
	}
}
