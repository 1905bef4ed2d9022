package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tomlKeys lists every key of t as dotted paths ("agent.state_dir",
// "instance.route.table").
func tomlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}) {
			if prefix != "" {
				out = append(out, path)
			}
			out = append(out, tomlKeys(ft, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// TestReadmeDocumentsEveryKey keeps the README's configuration reference
// complete: a key added to the code must be documented.
func TestReadmeDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	keys := tomlKeys(reflect.TypeOf(Config{}), "")
	if len(keys) < 50 {
		t.Fatalf("only %d keys found: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(readme, "| `"+k+"` |") {
			t.Errorf("README.md's configuration reference lacks `%s`", k)
		}
	}
}

// packagedKeyRe and packagedTableRe read the shipped configuration's keys
// and tables, written or commented out ("# key = value", "# # key = ...").
var (
	packagedKeyRe   = regexp.MustCompile(`^(?:#\s*)*([a-z_]+)\s*=`)
	packagedTableRe = regexp.MustCompile(`^(?:#\s*)*\[\[?([a-z_.]+)\]\]?\s*$`)
)

// TestPackagedConfigDocumentsEveryKey keeps the configuration the packages
// install complete: every key of the configuration code is shown in its
// table (most commented out with their defaults), so an operator finds it
// where it belongs.
func TestPackagedConfigDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../packaging/havip-agent.toml")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	table := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if m := packagedTableRe.FindStringSubmatch(line); m != nil {
			table = m[1]
			continue
		}
		if m := packagedKeyRe.FindStringSubmatch(line); m != nil {
			k := m[1]
			if table != "" {
				k = table + "." + k
			}
			shown[k] = true
		}
	}
	for _, k := range tomlKeys(reflect.TypeOf(Config{}), "") {
		if !shown[k] && !slices.ContainsFunc(tableKeys, func(p string) bool { return p == k }) {
			t.Errorf("packaging/havip-agent.toml does not show `%s` in its table", k)
		}
	}
}

// tableKeys are the keys tomlKeys lists that are tables of their own,
// shown by their header.
var tableKeys = []string{"instance.route", "instance.eip"}
