package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestIndexLines: the line the index gives for each key and table of a file
// that uses the syntax the generator below also writes.
func TestIndexLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]int
	}{
		{
			name: "tables and arrays of tables",
			src:  "top = 1\n[agent]\nsocket = \"/run/x\"\n[[instance]]\nname = \"a\"\n[[instance.route]]\ntable = \"t\"\n[[instance]]\nname = \"b\"\n[instance.eip]\naddress = \"198.18.0.1\"\n",
			want: map[string]int{"top": 1, "agent": 2, "agent.socket": 3, "instance[0]": 4, "instance[0].name": 5, "instance[0].route[0]": 6,
				"instance[0].route[0].table": 7, "instance[1]": 8, "instance[1].name": 9, "instance[1].eip": 10, "instance[1].eip.address": 11},
		},
		{
			name: "multi-line array elements",
			src:  "vips = [\n  \"198.18.0.1/32\", # first ]\n  \"198.18.0.2/32\",\n]\nnext = 1\n",
			want: map[string]int{"vips": 1, "vips[0]": 2, "vips[1]": 3, "next": 5},
		},
		{
			name: "multi-line strings hide headers and keys",
			src:  "a = \"\"\"\n[t]\nb = 1\n\"\"\"\nc = '''\n[[u]]\n'''\nd = 2\n",
			want: map[string]int{"a": 1, "c": 5, "d": 8},
		},
		{
			name: "comments and quoted keys",
			src:  "# [t]\n\"k\" = \"# not a comment\" # k2 = 1\n  'l' = 'C:\\' # x\n",
			want: map[string]int{"k": 2, "l": 3},
		},
		{
			name: "sub-table of the latest element after another table",
			src:  "[[instance]]\nname = \"a\"\n[agent]\n[instance.eip]\naddress = 1\n[[instance.route]]\ntable = 2\n",
			want: map[string]int{"instance[0].eip": 4, "instance[0].eip.address": 5, "instance[0].route[0]": 6, "instance[0].route[0].table": 7},
		},
		{
			name: "escaped quotes in a multi-line string",
			src:  "a = \"\"\"\nx \\\"\"\" y\n[[t]]\n\"\"\"\nb = 1\n",
			want: map[string]int{"a": 1, "b": 5},
		},
		{
			name: "multi-line strings in an array",
			src:  "a = [\n  '''\n  it's ]\n  ''',\n  \"after\",\n]\nb = 1\n",
			want: map[string]int{"a": 1, "a[0]": 2, "a[1]": 5, "b": 7},
		},
		{
			name: "array over lines in an inline table",
			src:  "c = 1\na = { b = [\n  \"c = 2\",\n] }\n",
			want: map[string]int{"c": 1, "a": 2},
		},
		{
			name: "comment character in a one-line multi-line string",
			src:  "a = '''it's # x'''\nb = 1\n",
			want: map[string]int{"a": 1, "b": 2},
		},
		{
			name: "carriage returns",
			src:  "[t]\r\nk = 1\r\n",
			want: map[string]int{"t": 1, "t.k": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if _, err := toml.Decode(tt.src, &m); err != nil {
				t.Fatalf("not valid TOML: %v", err)
			}
			ix := indexLines(tt.src)
			for path, want := range tt.want {
				if got := ix.lines[path]; got != want {
					t.Errorf("%s: got line %d, want %d", path, got, want)
				}
			}
		})
	}
}

// FuzzLines: the index never panics, gives only lines that exist, and keeps
// its three views consistent; and for a valid TOML file written by tomlGen
// from the fuzzer's bytes, the line of every key and table is the line it is
// written on.
func FuzzLines(f *testing.F) {
	for _, name := range []string{"good.toml", "checks.toml", "cloud.toml", "eips.toml", "unknown-key.toml", "wrong-type.toml"} {
		if b, err := readTestdata(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(""))
	f.Add([]byte("[[a]]\n[[a.b]]\n[c]\n[a.d]\nk = 1\n"))
	f.Add([]byte("k = [\n'''\nit's\n''',\n]\nl = 1\n"))
	f.Add([]byte("k = \"\"\"\nx \\\"\"\" y\nl = 1\n\"\"\"\n"))
	f.Add([]byte("k = { a = [\n\"l=1\",\n] }\n"))
	f.Add([]byte("[\n[[\n=\n\"\"\"\n'''\n[x\n"))
	f.Add([]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff, 0x00, 0x10, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkIndex(t, string(b))
		src, want := tomlGen(b)
		var m map[string]any
		if _, err := toml.Decode(src, &m); err != nil {
			t.Fatalf("generator wrote invalid TOML: %v\n%s", err, numbered(src))
		}
		ix := checkIndex(t, src)
		for _, path := range slices.Sorted(maps.Keys(want)) {
			if got := ix.lines[path]; got != want[path] {
				t.Errorf("%s: got line %d, want %d", path, got, want[path])
			}
			if got := ix.line(path); got != want[path] {
				t.Errorf("line(%s) = %d, want %d", path, got, want[path])
			}
		}
		if t.Failed() {
			t.Logf("file:\n%s", numbered(src))
		}
	})
}

func readTestdata(name string) ([]byte, error) { return readFile("testdata/" + name) }

// checkIndex indexes src and checks what holds for any input.
func checkIndex(t *testing.T, src string) *lineIndex {
	t.Helper()
	ix := indexLines(src)
	last := strings.Count(src, "\n") + 1
	if len(ix.order) != len(ix.lines) {
		t.Fatalf("%d paths in order, %d in lines", len(ix.order), len(ix.lines))
	}
	for _, p := range ix.order {
		l, ok := ix.lines[p]
		if !ok || l < 1 || l > last {
			t.Fatalf("%q: line %d (recorded %v) outside 1..%d", p, l, ok, last)
		}
		// The empty path (a header "[]" in junk) has nothing below it.
		if got := ix.line(p + ".x[1].y"); p != "" && (got < 1 || got > last) {
			t.Fatalf("line below %q: %d outside 1..%d", p, got, last)
		}
	}
	for p := range ix.elems {
		if _, ok := ix.lines[p]; !ok {
			t.Fatalf("element %q has no line", p)
		}
	}
	return ix
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d %q\n", i+1, l)
	}
	return b.String()
}

// choices hands out small numbers from the fuzzer's bytes, then zeros.
type choices struct{ b []byte }

func (c *choices) n(k int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0]) % k
	c.b = c.b[1:]
	return v
}

// genValue is a TOML value as written, and the line offsets (from the
// value's first line) of the elements the index records: elements of an
// array that start a line of their own, and the first one.
type genValue struct {
	text  string
	elems []int
}

// genValues are values a configuration may hold, with the characters that
// could mislead a line scanner: comment and key characters inside strings,
// brackets inside strings and comments, strings over several lines that
// look like headers and keys, escapes.
var genValues = []genValue{
	{text: `1`},
	{text: `true`},
	{text: `-1.5`},
	{text: `"plain"`},
	{text: `""`},
	{text: `"has # hash = and [brackets]"`},
	{text: `"escaped \" quote # x"`},
	{text: `"ends in a backslash\\"`},
	{text: `'C:\literal\' `},
	{text: `'lit "double" # not a comment'`},
	{text: `"""one line ' " """`},
	{text: `'''it's # not a comment'''`},
	{text: "\"\"\"\n[t0]\nk0 = 1\n# \"\"\n\"\"\""},
	{text: "\"\"\"\\\n  continued \\\"\"\" still inside\n  [[a0]]\n  \"\"\""},
	{text: "'''\n[[a0]]\nit's k1 = 2\n'''"},
	{text: `[]`},
	{text: `[ "198.18.0.1/32", '198.18.0.2/32' ]`, elems: []int{0, 0}},
	{text: `[ "]#", '[', "\"]" ]`, elems: []int{0, 0, 0}},
	{text: "[\n  \"198.18.0.1/32\", # a comment with ] and \"\n  \"198.18.0.2/32\",\n]", elems: []int{1, 2}},
	{text: "[ 1,\n  2, 3 ]", elems: []int{0, 1, 1}},
	{text: "[\n  [1, 2],\n  [\n    3,\n  ],\n]", elems: []int{1, 2}},
	{text: "[\n  { name = \"x\", v = [1, 2] },\n  { name = \"}]\" },\n]", elems: []int{1, 2}},
	{text: "[\n  '''\n  it's ] here\n  ''',\n  \"\"\"\n  \\\"\"\" ]\n  \"\"\",\n  \"after\",\n]", elems: []int{1, 4, 7}},
	{text: `{ a = 1, b = "x = [" }`},
	{text: "{ a = [\n  \"k0 = 1\",\n  \"[t0]\",\n] }"},
}

// tomlGen writes a valid TOML file from the fuzzer's bytes and returns it
// with the line of each key and table path in it. It writes top-level keys,
// then tables, arrays of tables, sub-tables and nested arrays of the
// latest element (also after other tables in between), dotted keys and
// headers, quoted keys, comments and blank lines.
func tomlGen(b []byte) (string, map[string]int) {
	c := &choices{b: b}
	g := &gen{c: c, want: map[string]int{}, used: map[string]bool{}}
	g.keys("", c.n(4))
	arrays := map[string]int{} // array of tables -> elements written
	for range c.n(10) {
		switch c.n(5) {
		case 0:
			name := fmt.Sprintf("t%d", c.n(4))
			if g.used[name] {
				continue
			}
			g.table(name, g.header(false, name), name)
		case 1:
			name := fmt.Sprintf("a%d", c.n(2))
			path := fmt.Sprintf("%s[%d]", name, arrays[name])
			arrays[name]++
			g.table(path, g.header(true, name), "")
		case 2:
			name := fmt.Sprintf("a%d", c.n(2))
			if arrays[name] == 0 {
				continue
			}
			sub := fmt.Sprintf("s%d", c.n(2))
			path := fmt.Sprintf("%s[%d].%s", name, arrays[name]-1, sub)
			if g.used[path] {
				continue
			}
			g.table(path, g.header(false, name, sub), path)
		case 3:
			name := fmt.Sprintf("a%d", c.n(2))
			if arrays[name] == 0 {
				continue
			}
			sub := fmt.Sprintf("n%d", c.n(2))
			parent := fmt.Sprintf("%s[%d].%s", name, arrays[name]-1, sub)
			path := fmt.Sprintf("%s[%d]", parent, arrays[parent])
			arrays[parent]++
			g.table(path, g.header(true, name, sub), "")
		case 4:
			// A dotted header defines its parent implicitly; a0 and a1 are
			// left alone, they are arrays.
			name := fmt.Sprintf("t%d", c.n(4))
			path := name + ".x"
			if g.used[path] {
				continue
			}
			g.table(path, g.header(false, name, "x"), path)
		}
	}
	sep := "\n"
	if c.n(4) == 0 {
		sep = "\r\n"
	}
	return strings.Join(g.lines, sep) + sep, g.want
}

type gen struct {
	c     *choices
	lines []string
	want  map[string]int
	used  map[string]bool // tables defined, and keys written, by path
}

// emit appends text, which may span lines, and returns its first line.
func (g *gen) emit(text string) int {
	n := len(g.lines) + 1
	g.lines = append(g.lines, strings.Split(text, "\n")...)
	return n
}

// header writes a table header in one of the spellings TOML allows.
func (g *gen) header(array bool, parts ...string) string {
	for i, p := range parts {
		switch g.c.n(4) {
		case 1:
			parts[i] = `"` + p + `"`
		case 2:
			parts[i] = " " + p + " "
		}
	}
	h := strings.Join(parts, ".")
	if array {
		h = "[[" + h + "]]"
	} else {
		h = "[" + h + "]"
	}
	switch g.c.n(4) {
	case 1:
		h += " # [t9] k9 = 1"
	case 2:
		h = "  " + h
	}
	return h
}

// table writes a header and some keys; used, when set, is marked defined.
func (g *gen) table(path, header, used string) {
	g.filler()
	g.want[path] = g.emit(header)
	if used != "" {
		g.used[used] = true
	}
	g.keys(path, g.c.n(5))
}

// filler writes nothing, a blank line or a comment that looks like content.
func (g *gen) filler() {
	switch g.c.n(6) {
	case 1:
		g.emit("")
	case 2:
		g.emit("# [[a0]] k0 = 1")
	case 3:
		g.emit("   \t")
	}
}

// keys writes up to n keys into the table at path ("" for the top level).
func (g *gen) keys(path string, n int) {
	prefix := ""
	if path != "" {
		prefix = path + "."
	}
	for range n {
		g.filler()
		name := fmt.Sprintf("k%d", g.c.n(6))
		written := name
		switch g.c.n(6) {
		case 1:
			written = `"` + name + `"`
		case 2:
			written = "'" + name + "'"
		case 3:
			// A dotted key; d0 is only ever a table of dotted keys.
			written = "d0 . " + name
			name = "d0." + name
		case 4:
			written = "  " + name
		}
		full := prefix + name
		if g.used[full] {
			continue
		}
		g.used[full] = true
		v := genValues[g.c.n(len(genValues))]
		eq := " = "
		if g.c.n(3) == 0 {
			eq = "="
		}
		text := written + eq + v.text
		if g.c.n(3) == 0 {
			text += " # k5 = [ ' \""
		}
		line := g.emit(text)
		g.want[full] = line
		for i, off := range v.elems {
			g.want[fmt.Sprintf("%s[%d]", full, i)] = line + off
		}
	}
}
