package emulator

import (
	"bytes"
	"encoding/json"
	"sort"
	"time"
)

// RequestRecord is one API, metadata or admin-free request as the emulator saw it.
type RequestRecord struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Operation string    `json:"operation"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Query     string    `json:"query"`
	// BodyFields are the top-level field names of the request's JSON body, sorted; none for an
	// empty body, the single name BodyNotObject for a body that is not a JSON object.
	BodyFields  []string `json:"bodyFields,omitempty"`
	ClientToken string   `json:"clientToken,omitempty"`
	Source      string   `json:"source"`
	AccessKeyID string   `json:"accessKeyId,omitempty"`
	Status      int      `json:"status"` // 0 when the connection was dropped without an answer
	Code        string   `json:"code,omitempty"`
	Fault       string   `json:"fault,omitempty"`    // the injected fault kind, if any
	Replayed    bool     `json:"replayed,omitempty"` // answered from the clientToken cache
	Applied     bool     `json:"applied,omitempty"`  // the request changed state
	// Received is, for a late fault, when the request arrived; Time is when it was applied.
	Received time.Time `json:"received,omitzero"`
	// ClientGone reports that the client had gone when a late request was applied: Status is
	// the answer it never got.
	ClientGone bool `json:"clientGone,omitempty"`
}

// BodyNotObject stands in RequestRecord.BodyFields for a body that is not a JSON object.
const BodyNotObject = "(not a JSON object)"

// bodyFields answers the top-level field names of a JSON object body, sorted.
func bodyFields(body []byte) []string {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return []string{BodyNotObject}
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ChangeRecord is one state change the emulator applied.
type ChangeRecord struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	RequestID   string    `json:"requestId,omitempty"`
	Operation   string    `json:"operation"`
	Resource    string    `json:"resource"`
	Before      string    `json:"before"`
	After       string    `json:"after"`
	Message     string    `json:"message"`
	Source      string    `json:"source,omitempty"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	// Fault is the fault kind injected into the request that made the change, if any ("late":
	// applied after its delay, whether or not the client still waited).
	Fault string `json:"fault,omitempty"`
}

// Log is a snapshot of the request and change logs.
type Log struct {
	Requests []RequestRecord `json:"requests"`
	Changes  []ChangeRecord  `json:"changes"`
}

// ring is a bounded FIFO: once full, the oldest entries are dropped.
type ring[T any] struct {
	items []T
	max   int
}

func (r *ring[T]) add(v T) {
	if len(r.items) >= r.max {
		n := copy(r.items, r.items[len(r.items)-r.max+1:])
		r.items = r.items[:n]
	}
	r.items = append(r.items, v)
}

func (r *ring[T]) snapshot() []T {
	out := make([]T, len(r.items))
	copy(out, r.items)
	return out
}
