// Package bce implements cloud.Provider on the Baidu AI Cloud (BCE) APIs with bce-sdk-go: HAVIP
// attach/detach, primary/standby route switch and single-line route update, and EIP bind.
//
// Every request is built as a bce.BceRequest, signed by the SDK's bce-auth-v1 signer and sent by
// the SDK's BceClient over one long-lived keep-alive HTTP client. The SDK's service methods are
// not used for sending because they take no context (so neither cancellation nor a per-attempt
// timeout is possible, and without a context the SDK rewrites the shared http.Client's Timeout
// on every request, a data race), and some of them do not send the documented request
// (vpc.SwitchRoute drops the switchRouteHA flag; vpc.UpdateRouteRule has no nexthopType). The
// SDK's own retry is disabled: cloud.RetryPolicy retries, re-signing each attempt, reusing the
// clientToken of a mutation.
//
// Every answer is bounded before the SDK reads it (the SDK reads an error answer whole): the
// Client's HTTP transport, its own or a copy of Options.HTTPClient's, cuts a successful answer
// at 4 MiB and an error answer at 64 KiB, and does not read one whose Content-Length is larger;
// such an answer is malformed (a permanent error for a success, an APIError classified by its
// status for an error). The code, message and request id of an APIError are clamped to
// printable text of bounded length, so are the ownership details and the error messages
// Observe, Claim and Preflight return, and the code of Options.OnRequest comes from a fixed
// set (cloud.KnownCode, else "other").
//
// # Route switches
//
// switchRouteHA is a toggle. An attempt that failed (timed out, its connection broken, 5xx) may
// still have been applied, and a second one would switch the pair back; the clientToken makes
// the documented API answer a replay with the first result, but the agent does not rely on it
// alone. So the switch is sent at most once per read: before any retry the rules are read, and
// a pair already active on this node ends the claim (cloud.RetryPolicy.DoRechecked; MaxAttempts
// bounds the sends). A read-back after a successful switch that still shows the old next hop
// ends the claim with a PendingError, never with a second switch. The other mutations (HAVIP
// attach and detach, single-line update, EIP bind and unbind) set a state rather than toggle
// it and are retried as they are, with their clientToken.
//
// Credentials come from a root-only TOML file (LoadCredentialsFile) or from the instance role
// (RoleCredentialSource), refreshed before they expire. Their secrets never reach a log line, an
// error or fmt output. Options.OnRequest reports every HTTP attempt (operation, code, duration)
// for metrics.
//
// # Public IPs
//
// A public IP bound to a HAVIP (HAVIPSpec.PublicIP, PUT /v1/havip/{id}?bindPublicIp with body
// {"publicIpAddress"}) follows the HAVIP's master by itself: the claim only binds it when the
// HAVIP holds none, never unbinds one, and reports a wrong one in Ownership.PublicIPProblem
// without touching the master claim. An EIP bound directly to an instance (EIPSpec) is moved:
// GET /v1/eip?eip=, PUT /v1/eip/{eip}?unbind when another node holds it, a read-back until it
// is free, PUT /v1/eip/{eip}?bind {instanceType, instanceId}, a read-back; each step has its own
// clientToken. EIPs on a HAVIP, a load balancer or a NAT gateway are never taken. The SDK's EIP
// guide adds two rules of the real API: only an "available" EIP can be bound, and the instance
// bound to must hold no EIP yet (so one node holds at most one directly bound EIP).
//
// # BBC (bare-metal) nodes
//
// With Options.InstanceType "BBC" the EIP bind says instanceType "BBC"; the HAVIP attach stays
// SERVER (or ENI with Options.ENIID) and route next hops stay the instance (or ENI) id. What the
// source documents say about BBC: it has its own API (bbc.<region>.baidubce.com, HTTP and
// HTTPS) with the conventions of the other APIs (bce-auth-v1, x-bce-date, x-bce-request-id, the
// common error codes, plus its own such as 404 InstanceNotFound and 403 OPERATION_DENY), and it
// "can combine with EIP and BLB" and interconnect with the BCC private network. The agent makes
// no BBC API call. The documents are silent on: the form of a BBC instance id (the agent treats
// ids as opaque and sends them as given), whether the metadata service answers
// instance-shortid and instance-role credentials on bare metal (if it does not, set the instance
// id and a credentials file), whether a BBC can be attached to a HAVIP as SERVER, and which
// instance types the EIP bind accepts (the SDK's example shows only BCC; BBC follows the issue
// and the emulator).
package bce
