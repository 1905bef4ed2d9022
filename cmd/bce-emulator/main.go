// Command bce-emulator serves a strict local emulation of the BCE HAVIP, route, EIP and
// metadata APIs for tests and demos. See package cloud/emulator for the contract.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/havip-agent/havip-agent/cloud/emulator"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bce-emulator:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bce-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	seedPath := fs.String("seed", "", "seed file (TOML), required")
	learnARP := fs.String("learn-arp", "", "interface to learn MACs and HAVIP masters from ARP on (read-only)")
	offset := fs.Duration("clock-offset", 0, "shift of the emulator clock relative to the machine clock")
	credTTL := fs.Duration("credential-ttl", 0, "lifetime of metadata instance-role credentials (default 1h)")
	logPath := fs.String("log", "", "write the JSON log to this file instead of stderr")
	rateLimit := fs.Float64("rate-limit", 0, "API requests per second of each access key, answered 429 beyond it (0: the seed's rate_limit, none by default)")
	rateBurst := fs.Int("rate-burst", 0, "API requests of each access key at once (0: the seed's rate_burst, else the rate rounded up)")
	latency := fs.Duration("latency", 0, "round trip of every API request, half each way (0: the seed's latency, none by default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *seedPath == "" {
		return errors.New("-seed is required")
	}
	logOut := stderr
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	seed, err := emulator.LoadSeed(*seedPath)
	if err != nil {
		return err
	}
	emu, err := emulator.New(seed, emulator.Options{ClockOffset: *offset, CredentialTTL: *credTTL,
		RateLimit: *rateLimit, RateBurst: *rateBurst, Latency: *latency}, log)
	if err != nil {
		return err
	}
	if rate, burst, lat := emu.RateLimit(); rate > 0 || lat > 0 {
		log.Info("API limits", "rate_limit", rate, "rate_burst", burst, "latency", lat.String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if *learnARP != "" {
		go func() {
			if err := emu.LearnARP(ctx, *learnARP); err != nil {
				log.Error("arp learning stopped", "err", err)
			}
		}()
	}
	fmt.Fprintf(stdout, "bce-emulator listening on http://%s\n", l.Addr())
	if err := emu.Serve(ctx, l); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
