// Package keepalived turns keepalived's notifications into events.
//
// keepalived reports VRRP transitions through vrrp_notify_fifo, one line
// per event ("INSTANCE "VI_1" MASTER 100"), and through notify scripts that
// receive the same words as arguments. ParseLine and ParseArgs are pure and
// share one grammar; FIFO reads the pipe without ever blocking keepalived;
// Watcher notices when keepalived's VRRP process is gone, which keepalived
// itself cannot report after a SIGKILL. ParseConf and LintConf read
// keepalived.conf's block structure and report what would keep the agent
// from hearing keepalived (for "config check -keepalived").
package keepalived
