package emulator

import (
	"fmt"
	"strings"
	"testing"
)

// baseSeed is one instance in a VPC with one subnet; the error cases
// append a table to it.
var baseSeed = NewSeedBuilder("1", "ak", "sk").Instance("a", "198.18.0.11").TOML()

func TestSeedErrors(t *testing.T) {
	// The appended table starts two lines after the base (the joining
	// newline): errors name their line from there.
	at := func(offset int) string { return fmt.Sprintf("s.toml:%d:", strings.Count(baseSeed, "\n")+2+offset) }
	tests := []struct {
		name  string
		extra string
		want  string
	}{
		{"unknown key", "[[vpc]]\nid = \"vpc-2\"\ncidr = \"10.0.0.0/16\"\ncolour = \"red\"\n", at(3) + ` unknown key "vpc.colour"`},
		{"syntax", "[[vpc]\n", at(1)},
		{"bad cidr", "[[vpc]]\nid = \"vpc-2\"\ncidr = \"10.0.0.1/16\"\n", at(0) + " vpc[1]: cidr:"},
		{"dup id", "[[vpc]]\nid = \"vpc-1\"\ncidr = \"10.0.0.0/16\"\n", at(0) + ` vpc[1]: id "vpc-1" already used`},
		{"ip outside subnet", "[[instance]]\nid = \"i-b\"\neni_id = \"eni-b\"\nsubnet_id = \"sbn-1\"\nprivate_ip = \"198.18.1.5\"\n", at(0) + " instance[1]: private_ip 198.18.1.5 is not inside"},
		{"havip ip in use", "[[havip]]\nid = \"havip-1\"\nsubnet_id = \"sbn-1\"\nprivate_ip = \"198.18.0.11\"\n", at(0) + " havip[0]:"},
		{"rule overlaps vpc", "[[route_rule]]\nid = \"rr-1\"\nroute_table_id = \"rt-1\"\nsource = \"0.0.0.0/0\"\ndestination = \"198.18.5.0/24\"\nnext_hop_type = \"custom\"\nnext_hop_id = \"i-a\"\n", at(0) + " route_rule[0]: The destination"},
		{"eip unknown instance", "[[eip]]\naddress = \"203.0.113.1\"\ninstance_id = \"i-zz\"\n", at(0) + " eip[0]: instance_id:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed, err := ParseSeed(strings.NewReader(baseSeed+"\n"+tt.extra), "s.toml")
			if err == nil {
				_, err = New(seed, Options{}, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	seed, err := ParseSeed(strings.NewReader(baseSeed), "s.toml")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := New(seed, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A VPC without a seeded route table gets one.
	if s := emu.State(); len(s.RouteTables) != 1 || s.RouteTables[0].ID != "rt-1" {
		t.Fatalf("route tables %+v", s.RouteTables)
	}
	if s := (SeedCredential{AccessKeyID: "ak", SecretAccessKey: "secret"}).String(); strings.Contains(s, "secret") {
		t.Fatalf("String leaks the secret: %s", s)
	}
}
