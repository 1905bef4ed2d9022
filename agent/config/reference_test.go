package config

import (
	"os"
	"reflect"
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
