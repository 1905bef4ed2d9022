package hooks

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr []string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "headers", in: "# the pager's token\nAuthorization: Bearer s3cret\n\n  x-team :  ops  \n",
			want: map[string]string{"Authorization": "Bearer s3cret", "X-Team": "ops"}},
		{name: "colon in value", in: "X-Url: https://a:b@c\n", want: map[string]string{"X-Url": "https://a:b@c"}},
		{name: "CRLF", in: "A: b\r\nC: d\r\n", want: map[string]string{"A": "b", "C": "d"}},
		{name: "no colon", in: "A: b\nBearer s3cret\n", wantErr: []string{`h.conf:2: want "Name: value"`}},
		{name: "no name", in: ": s3cret\n", wantErr: []string{"h.conf:1:"}},
		{name: "duplicate", in: "A: s3cret\na: s3cret\n", wantErr: []string{`h.conf:2: header "a" given twice`}},
		{name: "bad name", in: "X Token: s3cret\n", wantErr: []string{`h.conf:1: header "X Token": not a valid header name`}},
		{name: "reserved", in: "Host: s3cret\n", wantErr: []string{`h.conf:1: header "Host": set by the agent`}},
		{name: "control character", in: "A: s3\x01cret\n", wantErr: []string{`h.conf:1: header "A": the value holds a control character`}},
		{name: "every error", in: "x\ny\n", wantErr: []string{"h.conf:1:", "h.conf:2:"}},
	}
	for _, tt := range tests {
		got, err := ParseHeaders([]byte(tt.in), "h.conf")
		if tt.wantErr == nil {
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, got %v", tt.name, got)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("%s: error %q repeats a value", tt.name, err)
		}
	}
}

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"", "A: b\n", "# c\nX-Token: t\r\n", "a\x00: b", ": \n", "A: b\nA: c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseHeaders(data, "f")
		if err != nil {
			return
		}
		if err := validateHeaders(hs); err != nil {
			t.Errorf("ParseHeaders(%q) accepted headers Validate refuses: %v", data, err)
		}
	})
}
