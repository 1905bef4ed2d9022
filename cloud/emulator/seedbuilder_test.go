package emulator

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestSeedBuilderTOML renders a world with every kind of table; the text
// is the golden file and the world it parses into is the builder's.
func TestSeedBuilderTOML(t *testing.T) {
	b := NewSeedBuilder("t", "ak-t", "sk-t").
		Instance("a", "198.18.0.11").
		Instance("b", "198.18.0.12").
		DCGateway("dcgw-a").
		DCGateway("dcgw-b").
		RouteTable("rt-t").
		RouteRule(SeedRouteRule{ID: "rr-a", RouteTableID: "rt-t", Destination: "198.19.0.0/24", NextHopType: "dcGateway",
			NextHopID: "dcgw-a", StandbyID: "rr-b", StandbyNextHopID: "dcgw-b"}).
		RouteRule(SeedRouteRule{ID: "rr-c", RouteTableID: "rt-t", Source: "198.18.0.0/24", Destination: "198.19.1.0/24",
			NextHopType: "custom", NextHopID: "i-a", Description: `a "quoted" \ note`}).
		HAVIP("havip-t", "198.18.0.100", "t", "i-a", "i-b").
		EIP("198.19.2.10", "").
		EIP("198.19.2.11", "i-b")
	got := b.TOML()
	golden := filepath.Join("testdata", "seedbuilder.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	parsed, err := ParseSeed(strings.NewReader(got), "built.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !sameSeed(parsed, b.Seed()) {
		t.Errorf("parsed %+v, want %+v", parsed, b.Seed())
	}
	emu, err := New(parsed, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := emu.State(); len(st.Instances) != 2 || len(st.RouteRules) != 3 || len(st.HaVips) != 1 || len(st.EIPs) != 2 {
		t.Errorf("state %+v", st)
	}
}

// TestSeedBuilderEveryField sets every field a seed file can hold: each
// must come back from the rendered text, so a new field of Seed cannot be
// left out of TOML.
func TestSeedBuilderEveryField(t *testing.T) {
	var b SeedBuilder
	fill(reflect.ValueOf(&b.seed).Elem(), "v")
	parsed, err := ParseSeed(strings.NewReader(b.TOML()), "every.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !sameSeed(parsed, b.seed) {
		t.Errorf("parsed %+v\nwant %+v\nfrom:\n%s", parsed, b.seed, b.TOML())
	}
}

// fill sets every exported string and number field below v, with two
// elements in each list.
func fill(v reflect.Value, prefix string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(prefix + ` "x"`)
	case reflect.Int:
		v.SetInt(int64(len(prefix)))
	case reflect.Float64:
		v.SetFloat(float64(len(prefix)) + 0.5)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), prefix+"-"+v.Type().Field(i).Name)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), prefix+string(rune('0'+i)))
		}
	default:
		panic("fill: " + v.Kind().String())
	}
}

// sameSeed compares what a seed file holds, not where it came from.
func sameSeed(a, b Seed) bool {
	a.name, a.lines, b.name, b.lines = "", nil, "", nil
	return reflect.DeepEqual(a, b)
}
