package config

import (
	"strconv"
	"strings"
)

// lineIndex maps key paths such as "instance[1].vips" or
// "instance[0].route[2].table" to the line where they are written.
//
// BurntSushi/toml keeps key positions private and does not number the
// entries of arrays of tables, so the index is built by a small scanner that
// understands just enough TOML to follow headers, keys and multi-line
// values. It is only used to point at lines in error messages: a file it
// misreads still decodes correctly, the message just names a less precise
// line.
type lineIndex struct {
	lines map[string]int
	order []string        // paths in file order
	elems map[string]bool // paths that are array elements, not keys
}

func (ix *lineIndex) line(path string) int {
	if ix == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := ix.lines[p]; ok {
			return l
		}
	}
	return 0
}

// parentPath drops the last element of a path: "a[1].b[2]" -> "a[1].b",
// "a[1].b" -> "a[1]", "a[1]" -> "a".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// stripIndexes turns "instance[1].route[0].table" into "instance.route.table".
func stripIndexes(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func indexLines(src string) *lineIndex {
	ix := &lineIndex{lines: map[string]int{}, elems: map[string]bool{}}
	counts := map[string]int{} // array-of-tables path (unindexed parent resolved) -> next index
	table := ""                // current table path, indexed
	lines := strings.Split(src, "\n")
	for n := 0; n < len(lines); n++ {
		line := strings.TrimSpace(stripComment(lines[n]))
		if line == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "[["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]"))
			base := resolveTable(table, name)
			i := counts[base]
			counts[base] = i + 1
			table = base + "[" + strconv.Itoa(i) + "]"
			ix.add(table, n+1)
		case strings.HasPrefix(line, "["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			table = resolveTable(table, name)
			ix.add(table, n+1)
		default:
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				continue
			}
			key := cleanKey(line[:eq])
			path := key
			if table != "" {
				path = table + "." + key
			}
			ix.add(path, n+1)
			n = ix.value(path, lines, n, strings.TrimSpace(line[eq+1:]))
		}
	}
	return ix
}

func (ix *lineIndex) add(path string, line int) {
	if _, ok := ix.lines[path]; !ok {
		ix.order = append(ix.order, path)
	}
	ix.lines[path] = line
}

// value follows a value that may span lines (arrays, multi-line strings)
// and returns the index of its last line. Elements of an array that start on
// their own line are recorded as path[i].
func (ix *lineIndex) value(path string, lines []string, n int, rest string) int {
	if strings.HasPrefix(rest, `"""`) || strings.HasPrefix(rest, "'''") {
		delim := rest[:3]
		if strings.Contains(rest[3:], delim) {
			return n
		}
		for n+1 < len(lines) {
			n++
			if strings.Contains(lines[n], delim) {
				return n
			}
		}
		return n
	}
	if !strings.HasPrefix(rest, "[") {
		return n
	}
	depth, elem := 0, 0
	inElem := false
	inStr := byte(0)
	cur := rest
	for {
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			if inStr != 0 {
				if c == '\\' && inStr == '"' {
					i++
				} else if c == inStr {
					inStr = 0
				}
				continue
			}
			if c == '#' {
				break
			}
			if depth == 1 && !inElem && !strings.ContainsRune(" \t\r,]", rune(c)) {
				ep := path + "[" + strconv.Itoa(elem) + "]"
				ix.add(ep, n+1)
				ix.elems[ep] = true
				elem++
				inElem = true
			}
			switch c {
			case '"', '\'':
				inStr = c
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return n
				}
			case ',':
				if depth == 1 {
					inElem = false
				}
			}
		}
		if n+1 >= len(lines) {
			return n
		}
		n++
		cur = lines[n]
	}
}

// resolveTable turns a header name into an indexed path: a header
// [[instance.route]] inside instance[1] becomes instance[1].route.
func resolveTable(cur, name string) string {
	if cur == "" {
		return name
	}
	// Walk the current path's prefixes from the longest: the header extends
	// the innermost table whose unindexed name is a prefix of it.
	for p := cur; p != ""; p = parentPath(p) {
		s := stripIndexes(p)
		if strings.HasPrefix(name, s+".") && strings.HasSuffix(p, "]") {
			return p + name[len(s):]
		}
	}
	return name
}

func cleanKey(k string) string {
	parts := strings.Split(strings.TrimSpace(k), ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// stripComment removes a trailing comment that is not inside a string.
func stripComment(l string) string {
	inStr := byte(0)
	for i := 0; i < len(l); i++ {
		c := l[i]
		if inStr != 0 {
			if c == '\\' && inStr == '"' {
				i++
			} else if c == inStr {
				inStr = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			inStr = c
		case '#':
			return l[:i]
		}
	}
	return l
}
