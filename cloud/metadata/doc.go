// Package metadata reads this instance's identity and its instance-role credentials from the
// BCE instance metadata service (http://169.254.169.254 on a real instance; a local endpoint in
// tests).
//
// Every request is bounded by a timeout and every answer by a size limit. Errors name the
// endpoint path they came from and never contain a secret.
package metadata
