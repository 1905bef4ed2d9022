package rig

import (
	"fmt"
	"os"
	"path/filepath"
)

// KeepalivedConf renders a node's keepalived.conf: unicast peers, the
// agent's FIFO, no virtual_ipaddress. script_user precedes
// vrrp_notify_fifo, or keepalived drops the FIFO on a reload (see
// contrib/keepalived). global goes into global_defs, pre
// before the instance (track_file definitions), extra inside it.
func (n *Node) KeepalivedConf(priority int, global, pre, extra string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
    script_user root
    enable_script_security
    vrrp_notify_fifo %s
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
%s
}
%s
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    unicast_src_ip %s
    unicast_peer {
        %s
    }
%s
}
`, n.Name, n.FIFOPath(), global, pre, priority, n.IP, n.Peer, extra)
}

// StartKeepalived runs keepalived (VRRP only, -G: no syslog, whose
// slow console fallback would otherwise take every line) with conf.
func (n *Node) StartKeepalived(conf string, debug bool) error {
	path := filepath.Join(n.Dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	args := []string{"keepalived", "-n", "-P", "-G", "-f", path,
		"-p", filepath.Join(n.Dir, "keepalived.pid"), "-r", n.VRRPPid(), "-c", filepath.Join(n.Dir, "checkers.pid")}
	if debug {
		args = append(args, "-l", "-D")
	}
	p, err := startProcess(n.rig.NS.Command(n.Name, args...), prefixWriter(n.rig.Log, n.Name+" keepalived: "))
	if err != nil {
		return err
	}
	n.Keepalived = p
	return nil
}
