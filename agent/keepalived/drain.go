package keepalived

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Keywords of keepalived.conf's track files.
const (
	kwTrackFile     = "track_file"
	kwVRRPTrackFile = "vrrp_track_file" // the deprecated synonym
	kwFile          = "file"
	kwWeight        = "weight"
)

// defaultTrackWeight is keepalived's weight of a track_file that names
// none: a value of 1 lowers the priority by 1, and never means FAULT.
const defaultTrackWeight = 1

// trackFileDef is a top-level track_file block.
type trackFileDef struct {
	stmt *confStmt
	name string
	file string
	// weight is the block's own weight, and weightAt its statement (nil
	// when the block names none and keepalived's default applies).
	weight   int
	weightAt *confStmt
}

// trackFileDefs reads the top-level track_file (and vrrp_track_file)
// blocks by name.
func trackFileDefs(stmts []*confStmt) map[string]*trackFileDef {
	defs := map[string]*trackFileDef{}
	for _, s := range stmts {
		if (s.keyword() != kwTrackFile && s.keyword() != kwVRRPTrackFile) || len(s.words) < 2 || s.body == nil {
			continue
		}
		d := &trackFileDef{stmt: s, name: s.words[1], weight: defaultTrackWeight}
		for _, st := range s.body {
			switch {
			case st.keyword() == kwFile && len(st.words) >= 2:
				d.file = st.words[1]
			case st.keyword() == kwWeight && len(st.words) >= 2:
				if w, err := strconv.Atoi(st.words[1]); err == nil {
					d.weight, d.weightAt = w, st
				}
			}
		}
		defs[d.name] = d
	}
	return defs
}

// trackRef is one entry of a track_file block inside a vrrp_instance or a
// vrrp_sync_group: a definition's name and the weight it overrides, if
// any.
type trackRef struct {
	stmt      *confStmt
	name      string
	weight    int
	hasWeight bool
}

// trackRefs reads the track_file entries of an instance or sync group.
func trackRefs(s *confStmt) []trackRef {
	var out []trackRef
	for _, st := range s.body {
		if st.keyword() != kwTrackFile {
			continue
		}
		for _, e := range st.body {
			if len(e.words) == 0 {
				continue
			}
			r := trackRef{stmt: e, name: e.words[0]}
			if len(e.words) >= 3 && e.words[1] == kwWeight {
				if w, err := strconv.Atoi(e.words[2]); err == nil {
					r.weight, r.hasWeight = w, true
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// lintDrainFile checks that keepalived watches the drain file of agent
// instance in with weight 0, so that writing 1 puts the instance into
// FAULT: s is its vrrp_instance or vrrp_sync_group, members the group's
// vrrp_instances. A sync group may track the file itself or in every
// member.
func lintDrainFile(s *confStmt, in ConfInstance, members []*vrrpInst, defs map[string]*trackFileDef) []Finding {
	var out []Finding
	add := func(at *confStmt, format string, args ...any) {
		f := Finding{Error: true, Msg: fmt.Sprintf(format, args...)}
		if at != nil {
			f.File, f.Line = at.file, at.line
		}
		out = append(out, f)
	}
	want := filepath.Clean(in.DrainFile)
	var watching []*trackFileDef
	for _, d := range defs {
		if d.file != "" && filepath.Clean(d.file) == want {
			watching = append(watching, d)
		}
	}
	what := fmt.Sprintf("%s %s", s.keyword(), in.Name)
	name := "drain_" + strings.NewReplacer(".", "_", ":", "_", "-", "_").Replace(in.Name)
	if len(watching) == 0 {
		add(nil, "no track_file block watches %s, the drain_file of the agent's instance %q: havip-agent drain would change nothing; add\n"+
			"    track_file %s {\n        file %s\n        weight 0\n    }\nand track_file { %s } in %s", in.DrainFile, in.Name, name, in.DrainFile, name, what)
		return out
	}
	tracked := func(st *confStmt) (trackRef, *trackFileDef, bool) {
		for _, r := range trackRefs(st) {
			for _, d := range watching {
				if r.name == d.name {
					return r, d, true
				}
			}
		}
		return trackRef{}, nil, false
	}
	check := func(r trackRef, d *trackFileDef, owner string) {
		w, at := d.weight, d.weightAt
		if r.hasWeight {
			w, at = r.weight, r.stmt
		}
		if w == 0 {
			return
		}
		if at == nil {
			at = d.stmt
		}
		add(at, "%s tracks the drain file %s with weight %d: a drained node would only lose priority and may stay MASTER; write weight 0 (a non-zero value then puts the instance into FAULT)", owner, in.DrainFile, w)
	}
	if r, d, ok := tracked(s); ok {
		check(r, d, what)
		return out
	}
	if s.keyword() == "vrrp_sync_group" && len(members) > 0 {
		missing := false
		for _, m := range members {
			if r, d, ok := tracked(m.stmt); ok {
				check(r, d, fmt.Sprintf("vrrp_instance %s (of %s)", m.name, what))
			} else {
				missing = true
			}
		}
		if !missing {
			return out
		}
	}
	add(s, "%s does not track %s, the drain_file of the agent's instance %q (track_file %s watches it): add track_file { %s } to it", what, in.DrainFile, in.Name, watching[0].name, watching[0].name)
	return out
}
