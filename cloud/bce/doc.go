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
// Credentials come from a root-only TOML file (LoadCredentialsFile) or from the instance role
// (RoleCredentialSource), refreshed before they expire. Their secrets never reach a log line, an
// error or fmt output.
package bce
