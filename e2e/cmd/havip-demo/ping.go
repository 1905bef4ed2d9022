package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/havip-agent/havip-agent/e2e/rig"
	"golang.org/x/sys/unix"
)

// pinger sends an ICMP echo request every pingEvery from a namespace.
// It reads nothing: the client's capture sees the requests and replies.
// ping(8) is not used because its interval drifts at short intervals,
// which would make the lost-ping count wrong.
type pinger struct {
	fd   int
	stop chan struct{}
	done chan struct{}
}

// startPinger pings to from namespace nsName.
func startPinger(nsName string, to netip.Addr) (*pinger, error) {
	var fd int
	err := rig.InNamespace(nsName, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ping socket in %s: %w", nsName, err)
	}
	// Drop everything the socket would receive: nobody reads it.
	drop := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ping socket filter: %w", err)
	}
	p := &pinger{fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop(&unix.SockaddrInet4{Addr: to.As4()})
	return p, nil
}

func (p *pinger) loop(to *unix.SockaddrInet4) {
	defer close(p.done)
	id := uint16(os.Getpid())
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for seq := uint16(1); ; seq++ {
		// A request the kernel refuses (no neighbour yet) still takes
		// its number: it is a ping lost.
		_ = unix.Sendto(p.fd, echoRequest(id, seq), unix.MSG_DONTWAIT, to)
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// close stops the pings.
func (p *pinger) close() {
	close(p.stop)
	<-p.done
	unix.Close(p.fd)
}
