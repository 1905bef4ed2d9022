// Package control is the daemon's unix socket: the notify, status and
// check requests of the havip-agent command.
//
// One request per connection, each a single JSON object, answered by a
// single JSON object. The daemon checks the peer's credentials
// (SO_PEERCRED): root and the daemon's own user may send anything; members
// of the optional socket group may only read (status, check), so
// keepalived can run check scripts as an unprivileged script_user.
package control
