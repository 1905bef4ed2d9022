package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/journal"
)

// historyFlags are the flags of the history command.
type historyFlags struct {
	json  bool
	last  int
	since time.Duration
}

func (h *historyFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&h.json, "json", false, "print the events as JSON lines")
	fs.IntVar(&h.last, "n", 0, "print only the newest N events (0: all)")
	fs.DurationVar(&h.since, "since", 0, "print only the events of the last DURATION")
}

// cmdHistory prints the failover history from the journal in the state
// directory: it reads the files, not the daemon, so it works while the
// daemon is down.
func cmdHistory(args []string, stdout, stderr io.Writer, now time.Time) int {
	var h historyFlags
	fs, cfgPath, ok := flags("history", args, stderr, h.define)
	if !ok {
		return exitUsage
	}
	// Flags may also follow INSTANCE.
	var instance string
	if fs.NArg() > 0 {
		instance = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return usageErr(stderr, "history: "+err.Error())
		}
		if fs.NArg() > 0 {
			return usageErr(stderr, fmt.Sprintf("history takes at most one INSTANCE, got %q and %q", instance, fs.Arg(0)))
		}
	}
	switch {
	case h.last < 0:
		return usageErr(stderr, fmt.Sprintf("history: -n %d: want 0 (all) or more", h.last))
	case h.since < 0:
		return usageErr(stderr, fmt.Sprintf("history: -since %s: want a positive duration, such as 1h", h.since))
	}
	dir, ok := stateDir(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	f := journal.Filter{Instance: instance, Last: h.last}
	if h.since > 0 {
		f.Since = now.Add(-h.since)
	}
	events, skipped, err := journal.Read(dir, f)
	if err != nil {
		fmt.Fprintf(stderr, "havip-agent history: %v\n", err)
		switch {
		case errors.Is(err, os.ErrPermission):
			fmt.Fprintf(stderr, "havip-agent history: the journal in %s is readable by root (run history as root)\n", dir)
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stderr, "havip-agent history: no journal: the daemon has not run with state_dir %s (from %s)\n", dir, cfgPath)
		}
		return exitFail
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "havip-agent history: %d lines in %s do not parse and were skipped (a line torn by a crash, or another program's writing)\n", skipped, dir)
	}
	if h.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				fmt.Fprintf(stderr, "havip-agent history: %v\n", err)
				return exitFail
			}
		}
		return exitOK
	}
	if len(events) == 0 {
		fmt.Fprintf(stderr, "havip-agent history: no events in %s\n", dir)
		return exitOK
	}
	journal.WriteText(stdout, events)
	return exitOK
}

// stateDir finds the state directory: history reads only agent.state_dir,
// so that a mistake elsewhere in the file does not hide the history. A
// file this user may not read falls back to the default directory, saying
// so.
func stateDir(cfgPath string, stderr io.Writer) (string, bool) {
	dir, err := config.StateDir(cfgPath)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			fmt.Fprintf(stderr, "havip-agent history: %v; reading %s\n", err, config.DefaultStateDir)
			return config.DefaultStateDir, true
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return "", false
	}
	return dir, true
}
