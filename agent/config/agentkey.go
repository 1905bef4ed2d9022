package config

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// agentPath reads one path-valued key of [agent] from the configuration file
// at path, for the commands that need nothing else from it (the clients read
// the socket, history the state directory). It is lenient where Load is
// strict: unknown keys, wrong types and invalid values elsewhere, even a
// syntax error on another line, are ignored, so that a typo saved while the
// daemon runs does not break every vrrp_script, notify or history. A missing
// file, a missing key or an empty value gives def. Errors are a file Load
// would also refuse to read (not a regular file, larger than MaxFileSize,
// unreadable; a permission error wraps fs.ErrPermission) and a value problem
// reports as unusable, named by file:line.
func agentPath(path, key, def string, problem func(string) string) (string, error) {
	src, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return def, nil
	}
	if err != nil {
		return "", err
	}
	v, line, err := agentValue(path, string(src), key)
	if err != nil {
		return "", err
	}
	if v == "" {
		return def, nil
	}
	if msg := problem(v); msg != "" {
		full := "agent." + key
		if line == 0 {
			line = indexLines(string(src)).line(full)
		}
		return "", &Error{Problems: []Problem{{File: path, Line: line, Key: full, Msg: msg}}}
	}
	return v, nil
}

// agentValue finds the string [agent] key and the line it is written on (0
// when unknown). The whole file is decoded first, into a document that has
// only that key, so that nothing else can fail; when the file does not
// parse, the line scanner finds the key and only its line is decoded.
func agentValue(name, src, key string) (string, int, error) {
	full := "agent." + key
	doc := oneKeyDoc(key)
	_, err := toml.Decode(src, doc.Interface())
	var pe toml.ParseError
	switch {
	case err == nil:
		return doc.Elem().Field(0).Field(0).String(), 0, nil
	case !errors.As(err, &pe):
		// A type error, which with this document can only be about agent
		// or the key.
		return "", 0, decodeError(name, indexLines(src), err)
	}
	ix := indexLines(src)
	line, ok := ix.lines[full]
	if !ok {
		return "", 0, nil
	}
	if pe.Position.Line == line {
		// The error is in the key's own line (a duplicate key, say): there
		// is no value to trust.
		return "", line, decodeError(name, ix, err)
	}
	_, rest, _ := strings.Cut(strings.TrimSuffix(strings.Split(src, "\n")[line-1], "\r"), "=")
	var one struct {
		V string `toml:"v"`
	}
	if _, err := toml.Decode("v = "+rest, &one); err != nil {
		return "", line, &Error{Problems: []Problem{{File: name, Line: line, Key: full, Msg: "is not a single-line string"}}}
	}
	return one.V, line, nil
}

// oneKeyDoc is a pointer to a new struct{ Agent struct{ V string `toml:key` } `toml:"agent"` }:
// the document of a single [agent] key, so that decoding it ignores every
// other key and table.
func oneKeyDoc(key string) reflect.Value {
	inner := reflect.StructOf([]reflect.StructField{{Name: "V", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`toml:"` + key + `"`)}})
	outer := reflect.StructOf([]reflect.StructField{{Name: "Agent", Type: inner, Tag: `toml:"agent"`}})
	return reflect.New(outer)
}
