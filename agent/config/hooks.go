package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"github.com/havip-agent/havip-agent/agent/hooks"
)

// Hook is one [[hook]] section: an operator's action run on the daemon's
// events. Its meaning and validation belong to package hooks; this type
// only carries the file's keys.
type Hook struct {
	Name    string   `toml:"name"`
	Type    string   `toml:"type"`
	Events  []string `toml:"events"`
	Timeout Duration `toml:"timeout"`
	Command []string `toml:"command"`
	URL     string   `toml:"url"`
	// HeadersFile names a file of "Name: value" lines added to every
	// request; it usually holds a secret, so it is read like the
	// credentials file (see ReadHookFiles).
	HeadersFile string `toml:"headers_file"`
	// Retries is a pointer so that an http hook that leaves it out gets
	// hooks.DefaultRetries, and an exec hook that sets it is refused.
	Retries *int   `toml:"retries"`
	CAFile  string `toml:"ca_file"`

	spec hooks.Hook
}

// MaxHeadersFileSize bounds what is read of a headers file.
const MaxHeadersFileSize = 64 << 10

// HookSpecs returns the hooks as package hooks runs them, defaults applied
// and, once ReadHookFiles has run, with their headers.
func (c *Config) HookSpecs() []hooks.Hook {
	out := make([]hooks.Hook, len(c.Hooks))
	for i, h := range c.Hooks {
		out[i] = h.spec
	}
	return out
}

// validateHooks checks every hook with hooks' own rules, each problem at
// the line of its key, and that no two hooks share a name.
func (c *Config) validateHooks(v *validator) {
	names := map[string]int{}
	for i := range c.Hooks {
		h := &c.Hooks[i]
		p := fmt.Sprintf("hook[%d]", i)
		s := hooks.Hook{Name: h.Name, Type: hooks.Type(h.Type), Argv: h.Command, URL: h.URL, CAFile: h.CAFile}
		for j, e := range h.Events {
			ev, err := hooks.ParseEvent(e)
			if e == "" {
				err = errors.New("empty event")
			}
			if err != nil {
				v.add(fmt.Sprintf("%s.events[%d]", p, j), "%v", err)
				continue
			}
			s.Events = append(s.Events, ev)
		}
		if h.Events != nil && len(h.Events) == 0 {
			v.add(p+".events", "is empty, so the hook would never run: leave it out to run on every event")
		}
		switch {
		case h.Retries != nil:
			s.Retries = *h.Retries
		case s.Type == hooks.TypeHTTP:
			s.Retries = hooks.DefaultRetries
		}
		if h.HeadersFile != "" {
			requireAbs(v, p+".headers_file", h.HeadersFile)
			// Stands for the headers until ReadHookFiles reads them, so that
			// Validate applies the rule for URLs that carry headers.
			s.Headers = map[string]string{"X-Havip-Headers-File": "pending"}
		}
		s = s.WithDefaults()
		if h.Timeout.set {
			// After the defaults: an explicit zero is refused by
			// Validate, not defaulted.
			s.Timeout = h.Timeout.Duration
		}
		for _, err := range unjoin(s.Validate()) {
			var fe *hooks.FieldError
			if errors.As(err, &fe) {
				v.add(p+"."+fe.Field, "%v", fe.Err)
			} else {
				v.add(p, "%v", err)
			}
		}
		if h.Name != "" {
			if j, dup := names[h.Name]; dup {
				v.add(p+".name", "%q is already used by hook[%d]", h.Name, j)
			}
			names[h.Name] = i
		}
		s.Headers = nil
		h.spec = s
	}
}

// ReadHookFiles reads the headers file of every http hook that names one
// with read, which must refuse a file others may read (SecretFileReader),
// and checks its lines; problems are reported at the hook's headers_file
// key. Like ValidateCommands it is separate from Load, which reads no
// other file; run, reload and config check call it.
func (c *Config) ReadHookFiles(read func(path string) ([]byte, error)) error {
	v := &validator{file: c.Path, ix: c.lines}
	for i := range c.Hooks {
		h := &c.Hooks[i]
		if h.HeadersFile == "" {
			continue
		}
		key := fmt.Sprintf("hook[%d].headers_file", i)
		b, err := read(h.HeadersFile)
		if err != nil {
			v.add(key, "%v", err)
			continue
		}
		hs, err := hooks.ParseHeaders(b, h.HeadersFile)
		if err != nil {
			v.add(key, "%v", err)
			continue
		}
		h.spec.Headers = hs
	}
	return v.err()
}

// SecretFileReader returns a reader for files that hold secrets (a hook's
// headers): it accepts only a regular file of at most MaxHeadersFileSize,
// with no permission for group or others, owned by one of owners (the
// first is named in the fix), as the credentials file is checked.
func SecretFileReader(owners ...int) func(path string) ([]byte, error) {
	if len(owners) == 0 {
		owners = []int{os.Geteuid()}
	}
	owner := strconv.Itoa(owners[0])
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	return func(path string) ([]byte, error) {
		fix := fmt.Sprintf("fix: chown %s %s && chmod 600 %s", owner, path, path)
		// Non-blocking, so that a FIFO put in its place does not wait for
		// a writer; the check of the opened file refuses it.
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			return nil, pathErr(path, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, pathErr(path, err)
		}
		switch {
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("%s: is %s, not a regular file", path, fileKind(fi.Mode()))
		case fi.Mode().Perm()&0o077 != 0:
			return nil, fmt.Errorf("%s: mode %04o lets group or others read a secret; %s", path, fi.Mode().Perm(), fix)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !slices.Contains(owners, int(st.Uid)) {
			return nil, fmt.Errorf("%s: owned by uid %d, want uid %d; %s", path, st.Uid, owners[0], fix)
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxHeadersFileSize+1))
		if err != nil {
			return nil, pathErr(path, err)
		}
		if len(b) > MaxHeadersFileSize {
			return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxHeadersFileSize)
		}
		return b, nil
	}
}
