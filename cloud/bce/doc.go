// Package bce implements cloud.Provider on the Baidu AI Cloud (BCE) APIs with bce-sdk-go: HAVIP
// attach/detach, primary/standby route switch and single-line route update, and EIP bind.
//
// Every request is built as a bce.BceRequest, signed by the SDK's bce-auth-v1 signer and sent by
// the SDK's BceClient over one long-lived keep-alive HTTP client. The SDK's service methods are
// not used for sending because they take no context (so neither cancellation nor a per-attempt
// timeout is possible, and without a context the SDK rewrites the shared http.Client's Timeout
// on every request, a data race), and vpc.SwitchRoute does not send the documented request (it
// drops the switchRouteHA flag: WithQueryParamFilter skips an empty value). The SDK's models are
// used for the answers and for the bodies where they match the documents (HaVipInstanceArgs,
// HaVipBindPublicIpArgs, BindEipArgs); the route update has its own body, because
// vpc.UpdateRouteRuleArgs also carries routeRuleId, which the documented body has not. Every
// request the agent can send is listed in Contract with its source (rendered as
// testdata/api.md), and the tests check each request they send against it. The SDK's own retry
// is disabled: cloud.RetryPolicy retries, re-signing each attempt, reusing the
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
// ends the claim with a PendingError marked Accepted (cloud.IsUnconfirmed), never with a second
// switch. Ownership is the next hop of the ha:active rule: no document says whether the switch
// swaps the pathType of the two rules or their next hops, and either way the active rule's next
// hop is what carries the traffic. The other mutations (HAVIP
// attach and detach, single-line update, EIP bind and unbind) set a state rather than toggle
// it and are retried as they are, with their clientToken.
//
// # Fewer calls and round trips
//
// The routes of one table claimed or observed together share one read of the table (one
// request per page): a caller joins a read in flight only if it was not yet sent, or was sent
// after the caller's claim began (a read-back: after its mutation was answered) and after the
// table's last mutation, so a switch is never decided on a read older than its claim. A claim's
// read waits a moment before it is sent, for the claims of the other routes of the table.
//
// KeepWarm reads the resources named by Watch (one read per HAVIP, route table and EIP) every
// Options.KeepWarm, unless something else read them meanwhile (a MASTER's reconcile does): a
// node that is not MASTER thus keeps a connection per concurrent claim open to each endpoint
// (the transport's idle timeout is longer than the interval), so that its failover pays no TCP
// or TLS handshake, and a recent, read-only picture of its resources. From a picture no older
// than Options.PictureMaxAge, a claim sends the idempotent mutation first, with no read before
// it: the HAVIP attach of a node not bound, the next-hop update of a single-line rule that
// points elsewhere; a read afterwards decides the claim. A picture the mutation shows wrong (a
// rule replaced, a node bound meanwhile) costs a read, as before. A switch (a toggle) always
// reads first: a stale picture never switches a pair back.
//
// # Rate limit
//
// Every attempt of every call of the Client waits for one token bucket (Options.RateLimit,
// RateBurst). Waiting calls are served by priority: the mutations that move traffic (HAVIP
// attach, route switch and update), then the reads a claim needs before it writes, the other
// mutations (EIP, HAVIP detach, public IP), the reads that check a mutation, and last Observe
// and the keep-warm reads. A throttled answer (429 or a throttling code) pauses the calls of its
// priority and below for its Retry-After, and the checking and reporting reads for longer,
// doubling while the answers stay throttled: a fleet sharing an account's quota serves the
// calls that move traffic first only if the others step back. Throttled answers are retried
// without counting against MaxAttempts (the server applied nothing), with Retry-After plus up
// to half of it; the reads that can wait double theirs (cloud.RetryPolicy.Yield). A switch
// answered with throttling is sent again without a read first: it was refused, not applied.
//
// # Single-line routes
//
// The update (PUT /v1/route/rule/{id}) sends the documented body: sourceAddress,
// destinationAddress, nexthopId (description is optional and left out). It has no nexthopType:
// a rule keeps its type, so a rule whose nexthopType is not the configured next_hop_type is a
// PermanentError naming both (in Observe, Claim and Preflight), never a write.
//
// # Credentials
//
// Credentials come from a root-only TOML file (LoadCredentialsFile) or from the instance role
// (RoleCredentialSource: GET /latest/meta-data/sts-credential on the metadata service),
// refreshed well before they expire and at least every 5 minutes; a failed refresh keeps the last
// good credentials while they are valid and shows in RoleCredentialSource.Status. Their secrets never reach a log line, an
// error or fmt output. Options.OnRequest reports every HTTP attempt (operation, code, duration)
// for metrics.
//
// # Public IPs
//
// A public IP bound to a HAVIP (HAVIPSpec.PublicIP, PUT /v1/havip/{id}?bindPublicIp with body
// {"publicIpAddress"}) follows the HAVIP's master by itself: the claim only binds it when the
// HAVIP holds none, never unbinds one, and reports a wrong one in Ownership.PublicIPProblem
// without touching the master claim. An EIP bound directly to an instance (EIPSpec) is moved:
// GET /v1/eip?eip=, GET /v1/eip?instanceType&instanceId (this node must hold no other EIP: the
// bind refuses an instance that holds one, so one node holds at most one directly bound EIP),
// PUT /v1/eip/{eip}?unbind when another node holds it, a read-back until it is free (the
// unbind is asynchronous: unbinding, then available), PUT /v1/eip/{eip}?bind {instanceType,
// instanceId}, a read-back until it is bound (binding, then binded; only then is it owned); each
// step has its own clientToken. A bind refused while an unbind was still in progress is sent
// again once it has finished. EIPs are taken only from nodes (instance types BCC, BBC, DCC, ENI,
// or, with no type shown, an instance or ENI id): never from a HAVIP, a load balancer, a VPN or
// a NAT gateway. The EIP documents list the instance types BCC, BLB, VPN and NAT, none for a
// HAVIP.
//
// HAVIP attach and detach say instanceType SERVER (an instance) or ENI, the documented values,
// never whatever string a detail answer held.
//
// # BBC (bare-metal) nodes
//
// With Options.InstanceType "BBC" the EIP bind says instanceType "BBC"; the HAVIP attach stays
// SERVER (or ENI with Options.ENIID) and route next hops stay the instance (or ENI) id. The agent
// makes no BBC API call; what the documents say and leave open is in the README.
package bce
