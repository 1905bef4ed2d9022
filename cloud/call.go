package cloud

import "time"

// CallRecord describes one HTTP attempt of an API call once it has ended, for a provider's
// call observer: what the agent's failover history keeps of every mutating call, and what
// Baidu support asks for (the request id). Its strings come from the provider and the answer,
// clamped like the fields of APIError; none holds a secret.
type CallRecord struct {
	// Operation names the API operation, from a fixed set (such as "havip.attach").
	Operation string
	// Target names the call and its resource, such as "havip.attach havip-abc".
	Target string
	// Mutating is false for reads.
	Mutating bool
	// Attempt numbers the attempt within the call, from 1.
	Attempt int
	// Status is the HTTP status of the answer; 0 when none came.
	Status int
	// Code is the outcome as the request metrics name it: "OK", an API error code, "network",
	// "timeout", "canceled", "malformed", "other" or "HTTP<status>".
	Code string
	// ErrorCode is the API's own error code of an error answer, "" otherwise.
	ErrorCode string
	// RequestID is the answer's x-bce-request-id, "" when no answer came.
	RequestID string
	// ClientToken is the idempotency token the call carried, "" for reads.
	ClientToken string
	// Duration is how long the attempt took.
	Duration time.Duration
}
