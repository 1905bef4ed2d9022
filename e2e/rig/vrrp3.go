package rig

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VRRP is what a node's keepalived.conf varies in the failover matrix:
// the protocol version, the advertisement interval and whether keepalived
// also manages the VIPs (shared addresses, which VRRPv3 needs).
type VRRP struct {
	// Version is 2 or 3.
	Version int
	// AdvertInt is the advertisement interval; VRRPv2 takes whole
	// seconds only, VRRPv3 centiseconds.
	AdvertInt time.Duration
	Priority  int
	// SharedVIPs go into virtual_ipaddress on eth0 (prefix form,
	// "198.18.0.100/24"); none means the agent owns the addresses.
	SharedVIPs []string
	// TrackFile, when set, is tracked with weight 0: any non-zero value
	// puts the instance in FAULT.
	TrackFile string
	// NoPreempt keeps a returning node BACKUP.
	NoPreempt bool
	// RTPriority, when set, is vrrp_rt_priority: the VRRP process runs
	// with realtime scheduling at that priority.
	RTPriority int
}

// Check reports a configuration keepalived 2.2.7 would refuse or
// silently change: a VRRPv3 instance without VIPs, a VRRPv2 interval that
// is not whole seconds, a VRRPv3 interval finer than centiseconds.
func (v VRRP) Check() error {
	switch {
	case v.Version != 2 && v.Version != 3:
		return fmt.Errorf("vrrp: version %d, want 2 or 3", v.Version)
	case v.AdvertInt <= 0:
		return fmt.Errorf("vrrp: advert_int %v, want a positive interval", v.AdvertInt)
	case v.Priority < 1 || v.Priority > 254:
		return fmt.Errorf("vrrp: priority %d, want 1 to 254", v.Priority)
	case v.Version == 2 && v.AdvertInt%time.Second != 0:
		return fmt.Errorf("vrrp: advert_int %v: keepalived rounds a VRRPv2 interval to whole seconds", v.AdvertInt)
	case v.Version == 3 && v.AdvertInt%(10*time.Millisecond) != 0:
		return fmt.Errorf("vrrp: advert_int %v: VRRPv3 counts centiseconds", v.AdvertInt)
	case v.RTPriority < 0 || v.RTPriority > 99:
		return fmt.Errorf("vrrp: vrrp_rt_priority %d, want 1 to 99 (0 for none)", v.RTPriority)
	case v.Version == 3 && len(v.SharedVIPs) == 0:
		return errors.New("vrrp: keepalived refuses a VRRPv3 instance without virtual_ipaddress")
	}
	return nil
}

// AdvertIntString is the interval as keepalived.conf writes it, in
// seconds ("1", "0.1").
func (v VRRP) AdvertIntString() string {
	return strconv.FormatFloat(v.AdvertInt.Seconds(), 'f', -1, 64)
}

// KeepalivedConfVRRP renders a node's keepalived.conf for v: unicast
// peers, the agent's FIFO (script_user first, as in KeepalivedConf), and
// v's version, interval, shared VIPs and track file.
func (n *Node) KeepalivedConfVRRP(v VRRP) (string, error) {
	if err := v.Check(); err != nil {
		return "", err
	}
	return RenderKeepalivedVRRP(n.Name, n.IP, n.Peer, n.FIFOPath(), v), nil
}

// RenderKeepalivedVRRP is KeepalivedConfVRRP for any node; v must pass
// Check.
func RenderKeepalivedVRRP(routerID, ip, peer, fifo string, v VRRP) string {
	var global, pre, extra strings.Builder
	if v.Version == 3 {
		global.WriteString("    vrrp_version 3\n")
	}
	if v.RTPriority > 0 {
		fmt.Fprintf(&global, "    vrrp_rt_priority %d\n", v.RTPriority)
	}
	if v.TrackFile != "" {
		fmt.Fprintf(&pre, "track_file svc {\n    file %q\n}\n", v.TrackFile)
		extra.WriteString("    track_file {\n        svc weight 0\n    }\n")
	}
	if v.NoPreempt {
		extra.WriteString("    nopreempt\n")
	}
	if len(v.SharedVIPs) > 0 {
		extra.WriteString("    virtual_ipaddress {\n")
		for _, a := range v.SharedVIPs {
			fmt.Fprintf(&extra, "        %s dev eth0\n", a)
		}
		extra.WriteString("    }\n")
	}
	return fmt.Sprintf(`global_defs {
    router_id %s
    script_user root
    enable_script_security
    vrrp_notify_fifo %s
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
%s}
%s
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int %s
    unicast_src_ip %s
    unicast_peer {
        %s
    }
%s}
`, routerID, fifo, global.String(), pre.String(), v.Priority, v.AdvertIntString(), ip, peer, extra.String())
}

// VRRPChildPID is the pid the node's VRRP process wrote to its pid file,
// 0 when there is none.
func (n *Node) VRRPChildPID() int {
	b, err := os.ReadFile(n.VRRPPid())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// KillVRRPChild sends SIGKILL to the node's VRRP process alone (not to
// keepalived's parent, whose SIGTERM would make the child stop
// gracefully) and returns the pid and when the signal was sent.
func (n *Node) KillVRRPChild() (int, time.Time, error) {
	pid := n.VRRPChildPID()
	if pid <= 0 {
		return 0, time.Time{}, fmt.Errorf("%s: no VRRP process in %s", n.Name, n.VRRPPid())
	}
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return pid, at, fmt.Errorf("%s: kill VRRP process %d: %w", n.Name, pid, err)
	}
	return pid, at, nil
}

// KillKeepalivedTree sends SIGKILL to the node's VRRP process and to
// keepalived's parent at once, as a crash or an OOM kill of both would:
// no priority-0 advertisement, no FIFO line, no respawn. It returns when
// the signals were sent.
func (n *Node) KillKeepalivedTree() (time.Time, error) {
	pid := n.VRRPChildPID()
	if pid <= 0 || n.Keepalived == nil {
		return time.Time{}, fmt.Errorf("%s: keepalived is not running", n.Name)
	}
	at := time.Now()
	if err := syscall.Kill(n.Keepalived.Pid(), syscall.SIGKILL); err != nil {
		return at, fmt.Errorf("%s: kill keepalived: %w", n.Name, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return at, fmt.Errorf("%s: kill VRRP process %d: %w", n.Name, pid, err)
	}
	return at, nil
}

// Link is one interface of a namespace, opened ahead so that setting it
// down or up costs one netlink request.
type Link struct {
	h    *netlink.Handle
	link netlink.Link
}

// OpenLink opens ifname in namespace short.
func (h *HA) OpenLink(short, ifname string) (*Link, error) {
	nh, err := handleAt(h.NS.Name(short))
	if err != nil {
		return nil, err
	}
	l, err := nh.LinkByName(ifname)
	if err != nil {
		nh.Close()
		return nil, fmt.Errorf("%s in %s: %w", ifname, short, err)
	}
	return &Link{h: nh, link: l}, nil
}

// SwitchPort is the switch's end of the node's cable (the veth end in
// the switch namespace): down, the node is cut off the network.
func (h *HA) SwitchPort(node string) (*Link, error) { return h.OpenLink("sw", "p-"+node) }

// Set brings the interface up or down and returns when the request was
// sent.
func (l *Link) Set(up bool) (time.Time, error) {
	at := time.Now()
	var err error
	if up {
		err = l.h.LinkSetUp(l.link)
	} else {
		err = l.h.LinkSetDown(l.link)
	}
	if err != nil {
		return at, fmt.Errorf("set %s up=%v: %w", l.link.Attrs().Name, up, err)
	}
	return at, nil
}

// Close releases the netlink handle.
func (l *Link) Close() { l.h.Close() }

func handleAt(name string) (*netlink.Handle, error) {
	ns, err := vnetns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return nh, nil
}

// AddrChange is a change of an address's presence seen by an AddrSampler:
// the time of the first sample that saw the new state.
type AddrChange struct {
	At      time.Time
	Present bool
}

// AddrTrack is what an AddrSampler saw.
type AddrTrack struct {
	// Changes starts with the first sample's state.
	Changes []AddrChange
	Samples int
	// MaxGap is the longest time between two samples: the resolution
	// of Changes.
	MaxGap time.Duration
	// Last is the time of the last sample.
	Last time.Time
	// Err is the first dump error, if any.
	Err error
}

// AddrSampler dumps a namespace's IPv4 addresses of one interface every
// period and records when one address appears and disappears.
type AddrSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	t    AddrTrack
}

// SampleAddr starts sampling addr on ifname in namespace short.
func (h *HA) SampleAddr(short, ifname string, addr netip.Addr, period time.Duration) (*AddrSampler, error) {
	nh, err := handleAt(h.NS.Name(short))
	if err != nil {
		return nil, err
	}
	l, err := nh.LinkByName(ifname)
	if err != nil {
		nh.Close()
		return nil, fmt.Errorf("%s in %s: %w", ifname, short, err)
	}
	s := &AddrSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(nh, l.Attrs().Index, addr, period)
	return s, nil
}

func (s *AddrSampler) run(nh *netlink.Handle, index int, addr netip.Addr, period time.Duration) {
	defer close(s.done)
	defer nh.Close()
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		as, err := nh.AddrList(link, netlink.FAMILY_V4)
		now := time.Now()
		present := false
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
				present = true
			}
		}
		s.mu.Lock()
		switch {
		case err != nil:
			if s.t.Err == nil {
				s.t.Err = err
			}
		default:
			if s.t.Samples > 0 {
				s.t.MaxGap = max(s.t.MaxGap, now.Sub(s.t.Last))
			}
			if n := len(s.t.Changes); n == 0 || s.t.Changes[n-1].Present != present {
				s.t.Changes = append(s.t.Changes, AddrChange{At: now, Present: present})
			}
			s.t.Samples++
			s.t.Last = now
		}
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Now is what the sampler has seen so far.
func (s *AddrSampler) Now() AddrTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.t
	t.Changes = append([]AddrChange(nil), s.t.Changes...)
	return t
}

// Present reports the address's state at the latest sample.
func (s *AddrSampler) Present() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.t.Changes)
	return n > 0 && s.t.Changes[n-1].Present
}

// Stop ends the sampling and returns what it saw.
func (s *AddrSampler) Stop() AddrTrack {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.Now()
}

// FileWatch reports when a file is replaced or written (inotify on its
// directory: a rename into place or a close after writing).
type FileWatch struct {
	fd    int
	f     *os.File
	times chan time.Time
}

// WatchFile starts watching path; its directory must exist.
func WatchFile(path string) (*FileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify %s: %w", filepath.Dir(path), err)
	}
	w := &FileWatch{fd: fd, f: os.NewFile(uintptr(fd), "inotify"), times: make(chan time.Time, 64)}
	go w.read(filepath.Base(path))
	return w, nil
}

func (w *FileWatch) read(name string) {
	defer close(w.times)
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		at := time.Now()
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len, then the name.
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12 : off+16]))
			end := min(off+unix.SizeofInotifyEvent+nameLen, n)
			nameBytes := buf[off+unix.SizeofInotifyEvent : end]
			off = end
			if strings.TrimRight(string(nameBytes), "\x00") != name {
				continue
			}
			select {
			case w.times <- at:
			default:
			}
		}
	}
}

// Times delivers when the file was replaced or written.
func (w *FileWatch) Times() <-chan time.Time { return w.times }

// Drain discards the times waiting in Times.
func (w *FileWatch) Drain() {
	for {
		select {
		case <-w.times:
		default:
			return
		}
	}
}

// Close stops the watch.
func (w *FileWatch) Close() error { return w.f.Close() }

// CPUHogs are busy loops, per busy CPU one shell spinning in a node's
// namespace, that load the machine while both nodes run.
type CPUHogs struct {
	procs []*Process
}

// StartCPUHogs starts perNode busy loops in each node's namespace.
func (h *HA) StartCPUHogs(perNode int) (*CPUHogs, error) {
	c := &CPUHogs{}
	for _, node := range []string{"n1", "n2"} {
		for i := 0; i < perNode; i++ {
			p, err := startProcess(h.NS.Command(node, "sh", "-c", "while :; do :; done"), nil)
			if err != nil {
				c.Stop()
				return nil, err
			}
			c.procs = append(c.procs, p)
		}
	}
	return c, nil
}

// Stop kills the busy loops and waits for them.
func (c *CPUHogs) Stop() {
	for _, p := range c.procs {
		p.Kill()
	}
	c.procs = nil
}
