// Package cloud defines what the agent needs from the cloud: the resources that must point at
// this node (HAVIPs, route rules, EIPs), the Provider that observes and claims them, the error
// classification, the retry policy every API call goes through, and the clientToken scheme that
// makes a retried mutation idempotent.
//
// The package is pure: it performs no I/O. Package cloud/bce implements Provider on the Baidu AI
// Cloud (BCE) APIs.
package cloud
