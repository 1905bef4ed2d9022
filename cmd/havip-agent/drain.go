package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/control"
)

// drainFlags are the flags of the drain command.
type drainFlags struct {
	timeout time.Duration
	force   bool
}

func (f *drainFlags) define(fs *flag.FlagSet) {
	fs.DurationVar(&f.timeout, "timeout", agent.DefaultDrainTimeout, "how long to wait for another node to take over")
	fs.BoolVar(&f.force, "force", false, "stay drained even when no other node takes over")
}

// instanceArgs returns the INSTANCE arguments of fs, whose flags may also
// follow them.
func instanceArgs(name string, fs *flag.FlagSet, stderr io.Writer) ([]string, bool) {
	var names []string
	for fs.NArg() > 0 {
		if a := fs.Arg(0); !strings.HasPrefix(a, "-") {
			names = append(names, a)
			if err := fs.Parse(fs.Args()[1:]); err != nil {
				usageErr(stderr, name+": "+err.Error())
				return nil, false
			}
			continue
		}
		usageErr(stderr, fmt.Sprintf("%s: %q after the instances", name, fs.Arg(0)))
		return nil, false
	}
	return names, true
}

// cmdDrain is a planned switchover: the daemon drains the instances and
// streams the timeline until this node has left MASTER and the cloud
// points elsewhere (exit 0), or gives up after --timeout and undoes the
// drain (exit 1) unless --force.
func cmdDrain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f drainFlags
	fs, cfgPath, ok := flags("drain", args, stderr, f.define)
	if !ok {
		return exitUsage
	}
	names, ok := instanceArgs("drain", fs, stderr)
	if !ok {
		return exitUsage
	}
	if f.timeout <= 0 || f.timeout > agent.MaxDrainTimeout {
		return usageErr(stderr, fmt.Sprintf("drain: --timeout %s: want a duration above 0 and at most %s, such as 30s", f.timeout, agent.MaxDrainTimeout))
	}
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The daemon answers once it undid a drain that timed out; the
	// margin covers that.
	ctx, cancel := context.WithTimeout(ctx, f.timeout+time.Minute)
	defer cancel()
	req := control.Request{Op: control.OpDrain, Args: names, TimeoutMS: f.timeout.Milliseconds(), Force: f.force}
	_, err := control.Stream(ctx, sock, req, func(line string) { fmt.Fprintln(stdout, line) })
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "havip-agent drain: interrupted; the drain stays in force (havip-agent resume %s ends it)\n", strings.Join(names, " "))
	default:
		fmt.Fprintf(stderr, "havip-agent drain: %v\n", err)
	}
	return exitFail
}

// cmdResume lifts drains and returns at once: keepalived decides when this
// node is MASTER again.
func cmdResume(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath, ok := flags("resume", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	names, ok := instanceArgs("resume", fs, stderr)
	if !ok {
		return exitUsage
	}
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, sock, control.Request{Op: control.OpResume, Args: names})
	for _, l := range resp.Lines {
		fmt.Fprintln(stdout, l)
	}
	if err != nil {
		fmt.Fprintf(stderr, "havip-agent resume: %v\n", err)
		return exitFail
	}
	return exitOK
}
