// Package emulator is a strict, in-memory emulation of the Baidu AI Cloud (BCE) APIs that
// havip-agent uses: HAVIP, VPC route rules (including the HA primary/standby switch), EIP and the
// instance metadata service. It is the cloud in every test and in the demo; nothing reaches a
// real cloud.
//
// # Use
//
// In Go tests:
//
//	seed, _ := emulator.LoadSeed("testdata/seed.toml") // or ParseSeed(r, name)
//	emu, _ := emulator.New(seed, emulator.Options{}, logger)
//	srv := httptest.NewServer(emu.Handler())            // or emu.Serve(ctx, listener)
//
// As a process: bce-emulator -listen 127.0.0.1:0 -seed FILE [-learn-arp IFACE]
// [-clock-offset DURATION] [-credential-ttl DURATION] [-rate-limit N] [-rate-burst N]
// [-latency DURATION] [-log FILE] prints one line "bce-emulator listening on http://HOST:PORT"
// when ready and stops on SIGTERM/SIGINT.
//
// # Seed
//
// TOML with region, [[credential]], [[vpc]], [[subnet]], [[instance]], [[dc_gateway]] (id,
// vpc_id: dedicated-line gateways, the next hops of type dcGateway), [[route_table]],
// [[route_rule]], [[havip]] and [[eip]] tables, and the top-level keys ha_switch ("path_type",
// the default, or "next_hops": what switchRouteHA swaps) and eip_transition (a duration,
// none by default: how long EIP binds and unbinds stay in progress), rate_limit, rate_burst and
// latency (below); see Seed. Unknown keys and
// inconsistent data are errors naming file:line. A VPC without a seeded route table gets "rt-" +
// the VPC id suffix.
//
// # HTTP API (all on one listener; JSON as bce-sdk-go v0.9.277 sends and reads it)
//
//	POST   /v1/havip                         havip.create   {subnetId,name,privateIpAddress?,description?} -> {haVipId}
//	GET    /v1/havip?vpcId&marker&maxKeys    havip.list     -> {haVips,marker,isTruncated,nextMarker,maxKeys}
//	GET    /v1/havip/{id}                    havip.detail   -> HaVip with bindedInstances[{instanceId,instanceType,master}]
//	PUT    /v1/havip/{id}?modifyAttribute    havip.update   {name,description?}
//	DELETE /v1/havip/{id}                    havip.delete   (refused while instances or a public IP are bound)
//	PUT    /v1/havip/{id}?attach|?detach     havip.attach / havip.detach {instanceIds,instanceType: SERVER|ENI}
//	PUT    /v1/havip/{id}?bindPublicIp       havip.bindPublicIp {publicIpAddress}
//	PUT    /v1/havip/{id}?unbindPublicIp     havip.unbindPublicIp
//	GET    /v1/route?routeTableId|vpcId      route.table.get (includes the VPC's "sys" route, without id)
//	GET    /v1/route/rule?routeTableId|vpcId&marker&maxKeys  route.rule.list
//	POST   /v1/route/rule                    route.rule.create -> {routeRuleId} or, with nextHopList, {routeRuleIds}
//	PUT    /v1/route/rule/{id}               route.rule.update {sourceAddress?,destinationAddress?,nexthopId?,description?}
//	                                         (single-line rules only; other fields, nexthopType too, are ignored)
//	PUT    /v1/route/rule/{id}?switchRouteHA route.rule.switch (active rule of an HA pair only)
//	DELETE /v1/route/rule/{id}               route.rule.delete (either rule of an HA pair deletes the pair)
//	GET    /v1/subnet/{id}                   subnet.detail  -> {subnet:{subnetId,name,zoneName,cidr,vpcId,subnetType,availableIp,...}}
//	GET    /v1/eip?eip&instanceType&instanceId&status&marker&maxKeys  eip.list -> {eipList,...}
//	PUT    /v1/eip/{eip}?bind                eip.bind {instanceType: BCC|BBC|ENI, instanceId}
//	PUT    /v1/eip/{eip}?unbind              eip.unbind
//	GET    /1.0/meta-data/instance-shortid   metadata.instance-shortid (by the caller's source address)
//	GET    /latest/meta-data/sts-credential  metadata.sts-credential (the caller's instance role)
//	       -> {accessKeyId,secretAccessKey,sessionToken,createTime,expiration}, valid for Options.CredentialTTL
//
// The SDK's own vpc.SwitchRoute sends neither the switchRouteHA flag nor a body, so it is an
// update without a body and fails with 400 MalformedJSON, changing nothing. No document says
// what a switch does to the two rules; the seed picks: by default it swaps their pathType (the
// rules keep their next hops: the former standby rule is then the ha:active one and only it can
// be switched back); with ha_switch = "next_hops" it swaps their next hops (the same rule stays
// ha:active). Either way exactly one change is logged. An HA pair whose next hops are not dcGateway
// is refused, by the API and in the seed, 400 InvalidParameter (doc/VPC.md: the next hops of a
// multi-line route currently support only dedicated-line gateways).
//
// # EIPs
//
// An instance holds at most one EIP, its ENI counted as the same holder: a bind to one that
// holds an EIP is 400 InstanceAlreadyBindedEip (the EIP bind page states the rule; the code is
// the emulator's own, no document names it). Binds and unbinds are instantaneous unless the
// seed's eip_transition or a transition fault gives them a delay: the EIP is then "binding"
// (shown with its new instance) or "unbinding" (shown with its old one) until the delay has
// passed, and another bind or unbind meanwhile is 400 EipStatusNotAvailable (documented rule:
// only an available EIP can be bound; code the emulator's own); the end is logged as a change of
// operation eip.settle. An EIP bound to a HAVIP (by the HAVIP API) is shown with the HAVIP id and
// an empty instanceType: the EIP documents list the instance types BCC, BLB, VPN and NAT, none
// for a HAVIP, and the EIP API does not bind to HAVIPs.
//
// # Authentication
//
// bce-auth-v1 is verified from scratch (canonical URI, query, signed headers; host and x-bce-date
// must be signed). Errors: missing or garbled header 400 InvalidHTTPAuthHeader; unknown key 403
// InvalidAccessKeyId; timestamp + expiration before the emulator clock 400 RequestExpired; STS
// key without (or with a wrong or expired) x-bce-security-token 403 InvalidSessionToken; bad
// signature 400 SignatureDoesNotMatch. Metadata and admin endpoints need no authentication.
//
// # Errors and idempotency
//
// Errors are {"requestId","code","message"} with the x-bce-request-id header. Malformed JSON is
// 400 MalformedJSON, a JSON value of the wrong shape 400 InappropriateJSON, unknown resources 404
// NoSuchObject (InstanceNotFound for instances), validation 400 with a specific code such as
// HaVipPrivateIpInUse, HaVipInstanceLimitExceeded, RouteRuleConflict or
// RouteRuleDestinationOverlapVpc. A mutating request with a clientToken query parameter that
// succeeded is remembered for Options.IdempotencyTTL after its last use: the same request
// (method, path, query without the token, body) answers the first status and body without
// applying again; a different request with that token is 403 IdempotentParameterMismatch.
// Failed requests are not remembered (they changed nothing).
//
// # Rate limit and latency
//
// An account-wide quota is modelled per access key: a token bucket of rate_burst requests
// (default: rate_limit rounded up) refilled at rate_limit per second (Options.RateLimit and
// RateBurst, the flags -rate-limit and -rate-burst, override the seed). An authenticated API
// request that finds the bucket empty is answered 429 RequestLimitExceeded with Retry-After
// (the whole seconds until a token is there, at least 1) and applies nothing; it takes no
// token. No BCE document names the throttling code of these APIs: RequestLimitExceeded is the
// emulator's choice (CodeThrottled). latency (Options.Latency, -latency) is the round trip of
// every API request: half of it passes before the request is handled (the request record's
// received), half before the answer is written; its changes are stamped when they were made.
// Metadata and admin requests are neither limited nor delayed. Throttled requests are logged
// like any other (status 429, code).
//
// # HAVIP master
//
// A HAVIP's master is the bound instance whose MAC most recently announced the HAVIP address
// (ARP request or reply with that sender IP), else the most recently attached instance. MACs
// are learned from ARP sent from instance addresses, fed by LearnARP (raw socket, read-only) or
// directly by ObserveARP.
//
// # Admin (no authentication, JSON)
//
//	GET /_emulator/log[?since=SEQ]   request and change logs (also Log, Requests, Changes); each
//	                                 request names its body's top-level fields (bodyFields)
//	GET /_emulator/state             snapshot (also State, HaVipMaster)
//	GET|POST|DELETE /_emulator/faults  list, add a Fault, clear all (also Faults, AddFault, ClearFaults)
//	GET|POST /_emulator/clock {"offset":"1h"}  clock offset (also SetClockOffset, ClockOffset)
//	POST /_emulator/arp {"mac","ip"}  feed an ARP observation (also ObserveARP)
//
// Faults match an operation name (the names above, "metadata.*"-style prefixes, or "*"), fire
// for the next Count requests or with Probability from a seeded RNG, and are one of: latency,
// error (status/code; 429 adds Retry-After), drop (no answer, not applied), lost (applied, no
// answer), wrongTypes, huge (several MiB), wrongIds (applied, hostile answer), late, stale and
// transition (eip.bind and eip.unbind only: applied at once, in progress for delay).
// A "window" removes a fault that long after it was added; a window without count and
// probability fires on every matching request until then. For example:
//
//	{"operation":"route.rule.switch","kind":"late","delay":"3s","count":1}
//	{"operation":"*","kind":"stale","age":"2s","window":"30s"}
//	{"operation":"havip.detail","kind":"stale","mutations":1,"count":2}
//
// A late fault (mutating requests only; delay at most 1m) applies the request delay after it
// was received whether or not the client still waits, as a real cloud cannot recall a request
// already sent: a client that gave up (timeout, cancel) loses the answer, not the change. Its
// clientToken is checked when it is applied, so a retry with the same token that was applied
// first makes it a replay. The log shows it: the request record has fault "late", received
// (arrival) and time (application), clientGone when the client had left (status is then the
// answer it never got); each change it made has fault "late" and the application time.
//
// A stale fault (reads only) answers from the state as it was age ago (at most 10m), or from
// the state before the last mutations changes (at most 256), as an eventually consistent API
// does; the request record has fault "stale". The emulator keeps the states that API calls and
// ARP observations replaced, at most 256 of them and none older than 10m; a read asking for
// an older one gets the oldest kept.
//
// Logs and the clientToken cache are bounded (Options.MaxLogEntries, MaxIdempotencyEntries).
// Secret keys and session tokens never appear in logs.
package emulator
