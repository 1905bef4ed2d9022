//go:build !linux

package emulator

import (
	"context"
	"errors"
)

// LearnARP is only available on Linux.
func (e *Emulator) LearnARP(ctx context.Context, iface string) error {
	return errors.New("learn arp: only supported on linux")
}
