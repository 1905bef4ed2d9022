package cloud

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Resource
		want string // a substring of the error, "" for none
	}{
		{"havip", Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{ID: "havip-1"}}, ""},
		{"havip public ip", Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{ID: "havip-1", PublicIP: "198.19.0.1"}}, ""},
		{"havip public ipv6", Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{ID: "havip-1", PublicIP: "2001:db8::1"}}, "not an IPv4 address"},
		{"havip public junk", Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{ID: "havip-1", PublicIP: "1.2.3.4/32"}}, "not an IPv4 address"},
		{"havip no id", Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{}}, "id is empty"},
		{"eip", Resource{Kind: KindEIP, EIP: &EIPSpec{Address: "198.19.0.1"}}, ""},
		{"eip empty", Resource{Kind: KindEIP, EIP: &EIPSpec{}}, "address is empty"},
		{"eip path", Resource{Kind: KindEIP, EIP: &EIPSpec{Address: "1.2.3.4/../x"}}, "not an IPv4 address"},
		{"eip leading zero", Resource{Kind: KindEIP, EIP: &EIPSpec{Address: "1.2.3.04"}}, "not an IPv4 address"},
		{"unknown kind", Resource{Kind: "x"}, "unknown resource kind"},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !IsPermanent(err)):
			t.Errorf("%s: Validate() = %v, want a permanent error containing %q", tt.name, err, tt.want)
		}
	}
}
