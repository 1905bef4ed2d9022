// Package netif puts VIPs on interfaces and announces them.
//
// Addrs adds, removes and lists addresses through netlink; Watch reports
// address and link changes made by anyone; Announcer sends gratuitous ARP
// for IPv4 VIPs and unsolicited neighbour advertisements for IPv6 VIPs.
// Nothing here shells out: every operation is a netlink message or a raw
// socket write, so the failover path is a handful of system calls.
package netif
