package hooks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ParseHeaders reads the headers of an http hook from the content of its
// headers file: one "Name: value" per line, blank lines and lines
// starting with '#' ignored, each name at most once. file names the file
// in the errors, which never repeat a value: values are usually secrets.
// Whether only root can read the file is for the caller to check.
func ParseHeaders(data []byte, file string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("%s:%d: want \"Name: value\"", file, n))
			continue
		}
		key := http.CanonicalHeaderKey(name)
		if _, dup := out[key]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: header %q given twice", file, n, name))
			continue
		}
		h := map[string]string{name: strings.TrimSpace(value)}
		if err := validateHeaders(h); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, n, err))
			continue
		}
		out[key] = h[name]
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
