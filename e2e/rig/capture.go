package rig

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Frame is one Ethernet frame seen by a Capture, with the time the kernel
// received it (CLOCK_REALTIME, the clock of time.Now and of the
// emulator's logs).
type Frame struct {
	At   time.Time
	Data []byte
}

// Capture reads every frame crossing one interface of a namespace: an
// AF_PACKET socket for all protocols, the interface promiscuous (so a
// bridge hands up the frames it forwards between its ports), with kernel
// receive timestamps, so a slow reader does not skew the times.
type Capture struct {
	f       *os.File
	frames  chan Frame
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	dropped uint64 // frames lost because the channel was full
	untimed uint64 // frames without a kernel timestamp
}

// CaptureSwitch captures on the rig's bridge br0 in the switch namespace:
// the frames of every node, the client and the emulator.
func (h *HA) CaptureSwitch() (*Capture, error) { return StartCapture(h.NS.Name("sw"), "br0") }

// StartCapture captures on ifname in the named namespace; Close stops it.
func StartCapture(nsName, ifname string) (*Capture, error) {
	var fd int
	err := InNamespace(nsName, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		setup := func() error {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
				return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				return fmt.Errorf("bind %s: %w", ifname, err)
			}
			mreq := &unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
			if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
				return fmt.Errorf("promiscuous %s: %w", ifname, err)
			}
			return nil
		}
		if err := setup(); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("capture on %s in %s: %w", ifname, nsName, err)
	}
	c := &Capture{f: os.NewFile(uintptr(fd), "packet:"+ifname), frames: make(chan Frame, 1<<16), done: make(chan struct{})}
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return nil, err
	}
	go c.read(rc)
	return c, nil
}

func (c *Capture) read(rc interface {
	Read(func(uintptr) bool) error
}) {
	defer close(c.frames)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil || (rerr != nil && !errors.Is(rerr, unix.EINTR)) {
			return
		}
		if rerr != nil {
			continue
		}
		at, ok := kernelTime(oob[:oobn])
		if !ok {
			c.mu.Lock()
			c.untimed++
			c.mu.Unlock()
		}
		fr := Frame{At: at, Data: append([]byte(nil), buf[:n]...)}
		select {
		case c.frames <- fr:
		case <-c.done:
			return
		default:
			c.mu.Lock()
			c.dropped++
			c.mu.Unlock()
		}
	}
}

// kernelTime is the SCM_TIMESTAMPNS of a message; now and false when
// absent.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				return time.Unix(sec, nsec), true
			}
		}
	}
	return time.Now(), false
}

// Frames delivers the captured frames in arrival order; it is closed
// after Close.
func (c *Capture) Frames() <-chan Frame { return c.frames }

// Dropped is the number of frames lost because nobody read Frames in time.
func (c *Capture) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Untimed is the number of frames that came without a kernel timestamp
// and carry the reader's time.Now instead.
func (c *Capture) Untimed() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.untimed
}

// Drain discards the frames waiting in Frames.
func (c *Capture) Drain() {
	for {
		select {
		case <-c.frames:
		default:
			return
		}
	}
}

// Close stops the capture.
func (c *Capture) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.f.Close()
	})
	return err
}

// htons puts v in network byte order, as the socket calls want it.
func htons(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }
