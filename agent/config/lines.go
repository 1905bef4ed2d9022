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
	// arrays counts the elements of each array of tables seen so far, by
	// its indexed path: a header names the latest element of every array
	// on its path, however many other tables came in between.
	arrays := map[string]int{}
	table := "" // current table path, indexed
	lines := strings.Split(src, "\n")
	for n := 0; n < len(lines); n++ {
		line := strings.TrimSpace(stripComment(lines[n]))
		if line == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "[["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]"))
			base := resolveTable(arrays, name)
			i := arrays[base]
			arrays[base] = i + 1
			table = base + "[" + strconv.Itoa(i) + "]"
			ix.add(table, n+1)
		case strings.HasPrefix(line, "["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			table = resolveTable(arrays, name)
			ix.add(table, n+1)
		default:
			if strings.IndexByte(line, '=') < 0 {
				continue
			}
			// The key ends at the first '=', which the comment, if any,
			// follows; the value is scanned from the raw line, whose
			// strings may hold what looks like a comment.
			key, rest, _ := strings.Cut(lines[n], "=")
			key = cleanKey(key)
			path := key
			if table != "" {
				path = table + "." + key
			}
			ix.add(path, n+1)
			n = ix.value(path, lines, n, strings.TrimLeft(rest, " \t"))
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

// value follows a value that may span lines (arrays, inline tables,
// multi-line strings, and strings inside them) and returns the index of its
// last line. Each element of an array is recorded as path[i], at the line
// where it starts.
func (ix *lineIndex) value(path string, lines []string, n int, rest string) int {
	array := strings.HasPrefix(rest, "[")
	depth, elem := 0, 0
	inElem := false
	var str string // the delimiter of the string being read, if any
	cur := rest
	for {
	scan:
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			if str != "" {
				switch {
				case c == '\\' && str[0] == '"':
					i++
				case strings.HasPrefix(cur[i:], str):
					i += len(str) - 1
					if len(str) == 3 {
						// A multi-line string may end in one or two
						// quotes of its own before the delimiter.
						for k := 0; k < 2 && i+1 < len(cur) && cur[i+1] == str[0]; k++ {
							i++
						}
					}
					str = ""
				}
				continue
			}
			if c == '#' {
				break scan
			}
			if array && depth == 1 && !inElem && !strings.ContainsRune(" \t\r,]", rune(c)) {
				ep := path + "[" + strconv.Itoa(elem) + "]"
				ix.add(ep, n+1)
				ix.elems[ep] = true
				elem++
				inElem = true
			}
			switch c {
			case '"', '\'':
				str = string(c)
				if strings.HasPrefix(cur[i:], strings.Repeat(str, 3)) {
					str = strings.Repeat(str, 3)
					i += 2
				}
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth <= 0 {
					return n
				}
			case ',':
				if depth == 1 {
					inElem = false
				}
			}
		}
		if len(str) == 1 {
			// A one-line string left open is a syntax error the decoder
			// reports; do not let it swallow the lines that follow.
			str = ""
		}
		if (depth == 0 && str == "") || n+1 >= len(lines) {
			return n
		}
		n++
		cur = lines[n]
	}
}

// resolveTable turns a header name into an indexed path: every array of
// tables on the way gets the index of its latest element, so a header
// [instance.route] after the second [[instance]] becomes
// instance[1].route. arrays holds the element counts by indexed path.
func resolveTable(arrays map[string]int, name string) string {
	path := ""
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if path != "" {
			path += "."
		}
		path += p
		if k := arrays[path]; k > 0 && i < len(parts)-1 {
			path += "[" + strconv.Itoa(k-1) + "]"
		}
	}
	return path
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
