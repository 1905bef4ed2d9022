package bce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/baidubce/bce-sdk-go/auth"
	sdk "github.com/baidubce/bce-sdk-go/bce"

	"github.com/havip-agent/havip-agent/cloud"
)

// Options configures a Client.
type Options struct {
	// Region is the BCE region, such as "bj"; it makes the default endpoints.
	Region string
	// Endpoint is the VPC/HAVIP API endpoint (default https://bcc.<region>.baidubce.com). It
	// may be a plain http://127.0.0.1:PORT (tests, the emulator).
	Endpoint string
	// EIPEndpoint is the EIP API endpoint (default https://eip.<region>.baidubce.com).
	EIPEndpoint string
	// InstanceID is this node's instance id; when empty it is read from Identity.
	InstanceID string
	// Identity resolves the instance id when InstanceID is empty (a *metadata.Client).
	Identity InstanceIdentity
	// ENIID, when set, is attached to HAVIPs (instanceType ENI) instead of the instance
	// (instanceType SERVER), and is the next hop of routes with nexthopType "enic".
	ENIID string
	// InstanceType is "BCC" (default) or "BBC"; it is the instanceType of EIP binds.
	InstanceType string
	// Timeout bounds each attempt of an API call (default 3 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (default 200 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds the attempts of one API call; 0 means until the context ends.
	MaxAttempts int
	// ConfirmAttempts bounds the read-backs after a claim's mutations (default 5).
	ConfirmAttempts int
	// DryRun makes claims perform only their reads and log the mutating calls they would make.
	DryRun bool
	// RateLimit bounds the API requests of the Client, every call and attempt together, to
	// this many per second, RateBurst at once (a token bucket): 0 means DefaultRateLimit and
	// DefaultRateBurst, a negative rate no limit. When it makes calls wait, those that move
	// traffic go first (HAVIP attach, route switch and update), then the reads a claim needs
	// before it writes, the other mutations (EIP, HAVIP detach and public IP), the reads that
	// check a mutation, and last Observe and the keep-warm reads. A throttled answer (429)
	// holds back the calls of its priority and below for its Retry-After.
	RateLimit float64
	RateBurst int
	// KeepWarm is how often KeepWarm reads each watched resource whose last read is older
	// (default DefaultKeepWarm; negative disables): it keeps a connection to each endpoint open,
	// so that a failover's first request pays no TCP or TLS handshake, and a recent picture of
	// the resources for claims that need no read first.
	KeepWarm time.Duration
	// PictureMaxAge is how old the picture of a resource (its last read) may be for a claim to
	// send an idempotent mutation without reading first (default DefaultPictureMaxAge, or four
	// keep-warm intervals when that is longer; negative never): a HAVIP attach, a single-line
	// rule's next-hop update. A switch always reads first.
	PictureMaxAge time.Duration
	// HTTPClient sends the requests; nil means a keep-alive client owned by the Client. Either
	// way the Client sends through a copy whose transport bounds every answer (4 MiB, an error
	// answer 64 KiB) before the SDK reads it.
	HTTPClient *http.Client
	// UserAgent overrides the User-Agent header.
	UserAgent string
	// OnRequest, if set, is told about every HTTP attempt of an API call once it has ended (so a
	// call retried three times reports three attempts), for metrics such as
	// havip_agent_cloud_requests_total{operation,code} and a latency histogram. operation is
	// one of the Op* constants (no resource ids, to keep label cardinality fixed); code is
	// from a fixed set too: CodeOK, the API's error code when cloud.KnownCode accepts it,
	// CodeOther for any other code, "HTTP<status>" (400 to 599) when the answer carries none,
	// or one of CodeNetwork, CodeTimeout, CodeCanceled and CodeMalformed; d is the attempt's
	// duration. It is called from the goroutine of the call, must be quick and must not call
	// the Client. Attempts that never reached the network (no credentials, dry-run) are not
	// reported.
	OnRequest func(operation, code string, d time.Duration)
	// OnCall, if set, is told about every HTTP attempt too, once it has ended, with what the
	// failover history keeps: the HTTP status, the API's error code, the request id and the
	// clientToken. ctx is the attempt's, derived from the caller's, so values the caller put in
	// it say what the call was for. Like OnRequest it is called from the goroutine of the call
	// and must be quick, must not block and must not call the Client.
	OnCall func(ctx context.Context, c cloud.CallRecord)
}

// Operation names passed to Options.OnRequest; they match the operation names of the cloud
// emulator.
const (
	OpHAVIPDetail       = "havip.detail"
	OpHAVIPAttach       = "havip.attach"
	OpHAVIPDetach       = "havip.detach"
	OpHAVIPBindPublicIP = "havip.bindPublicIp"
	OpRouteRuleList     = "route.rule.list"
	OpRouteRuleSwitch   = "route.rule.switch"
	OpRouteRuleUpdate   = "route.rule.update"
	OpSubnetDetail      = "subnet.detail"
	OpEIPList           = "eip.list"
	OpEIPBind           = "eip.bind"
	OpEIPUnbind         = "eip.unbind"
)

// Codes passed to Options.OnRequest besides the API's own error codes.
const (
	// CodeOK is a successful attempt.
	CodeOK = "OK"
	// CodeNetwork is an attempt that got no answer: refused, reset, a broken connection.
	CodeNetwork = "network"
	// CodeTimeout is an attempt that ran out of time (the per-attempt timeout or the caller's
	// deadline).
	CodeTimeout = "timeout"
	// CodeCanceled is an attempt abandoned because its caller cancelled it (for example the
	// node left MASTER while a claim was in flight).
	CodeCanceled = "canceled"
	// CodeMalformed is an answer that could not be read: too large or not the JSON expected.
	CodeMalformed = "malformed"
	// CodeOther is an error answer whose code is not one cloud.KnownCode accepts, or whose
	// status is outside 400 to 599.
	CodeOther = "other"
)

// InstanceIdentity resolves this node's instance id.
type InstanceIdentity interface {
	InstanceID(ctx context.Context) (string, error)
}

// Client implements cloud.Provider on the BCE APIs. It is safe for concurrent use; create one
// per process so that connections are reused.
type Client struct {
	opts    Options
	creds   CredentialSource
	logger  *slog.Logger
	hc      *http.Client
	retry   cloud.RetryPolicy
	confirm cloud.RetryPolicy
	nodeID  string
	// lim is the client-side rate limit, nil for none.
	lim *limiter
	// tables shares the reads of route tables between concurrent claims and observes.
	tables *tableReads
	// pic is what the last reads showed of each resource, and when.
	pic *picture
	// watch is the set of resources KeepWarm reads.
	watch *watchSet
}

var _ cloud.Provider = (*Client)(nil)

// New returns a Client. It resolves the instance id (from opts.InstanceID or opts.Identity)
// but makes no cloud API call.
func New(ctx context.Context, opts Options, creds CredentialSource, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if creds == nil {
		return nil, errors.New("bce: no credential source")
	}
	if opts.Endpoint == "" || opts.EIPEndpoint == "" {
		if opts.Region == "" {
			return nil, errors.New("bce: region is empty and an endpoint is not set")
		}
		if strings.ContainsAny(opts.Region, "/:@ ") {
			return nil, fmt.Errorf("bce: region %q is not a region name", opts.Region)
		}
	}
	if opts.Endpoint == "" {
		opts.Endpoint = "https://bcc." + opts.Region + ".baidubce.com"
	}
	if opts.EIPEndpoint == "" {
		opts.EIPEndpoint = "https://eip." + opts.Region + ".baidubce.com"
	}
	for _, e := range []string{opts.Endpoint, opts.EIPEndpoint} {
		if !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "http://") {
			return nil, fmt.Errorf("bce: endpoint %q must start with https:// or http://", e)
		}
	}
	switch opts.InstanceType = strings.ToUpper(opts.InstanceType); opts.InstanceType {
	case "":
		opts.InstanceType = "BCC"
	case "BCC", "BBC":
	default:
		return nil, fmt.Errorf("bce: instance type %q is neither BCC nor BBC", opts.InstanceType)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = cloud.DefaultTimeout
	}
	if opts.ConfirmAttempts <= 0 {
		opts.ConfirmAttempts = 5
	}
	switch {
	case opts.RateLimit == 0:
		opts.RateLimit = DefaultRateLimit
		if opts.RateBurst <= 0 {
			opts.RateBurst = DefaultRateBurst
		}
	case opts.RateBurst <= 0:
		opts.RateBurst = max(1, int(opts.RateLimit))
	}
	if opts.KeepWarm == 0 {
		opts.KeepWarm = DefaultKeepWarm
	}
	if opts.PictureMaxAge == 0 {
		opts.PictureMaxAge = max(DefaultPictureMaxAge, pictureRounds*opts.KeepWarm)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "havip-agent " + sdk.DEFAULT_USER_AGENT
	}
	for _, w := range EndpointWarnings(opts) {
		logger.Warn(w)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:    opts.Timeout,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        idleConnTimeout(opts.KeepWarm),
			MaxResponseHeaderBytes: maxErrorAnswer,
		}}
	}
	c := &Client{opts: opts, creds: creds, logger: logger, hc: boundedClient(hc),
		lim: newLimiter(opts.RateLimit, opts.RateBurst), pic: newPicture(), watch: &watchSet{}}
	c.tables = newTableReads(c)
	c.retry = cloud.RetryPolicy{
		Timeout: opts.Timeout, MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff, MaxAttempts: opts.MaxAttempts,
		OnRetry: func(op string, attempt int, err error, wait time.Duration) {
			logger.Warn("cloud call failed; retrying", "op", op, "attempt", attempt, "err", err, "wait", wait)
		},
	}
	c.confirm = c.retry
	c.confirm.MaxAttempts = opts.ConfirmAttempts
	c.nodeID = opts.InstanceID
	if c.nodeID == "" {
		if opts.Identity == nil {
			return nil, errors.New("bce: instance id is empty and no metadata service is configured")
		}
		err := c.retry.Do(ctx, "metadata.instance-id", func(ctx context.Context) error {
			id, err := opts.Identity.InstanceID(ctx)
			if err != nil {
				return &cloud.TransportError{Operation: "metadata.instance-id", Err: err}
			}
			c.nodeID = id
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bce: resolving this node's instance id: %w", err)
		}
	}
	return c, nil
}

// EndpointWarnings returns a warning for each API endpoint of opts that is plain http to a host
// other than loopback: its requests, their signatures (and session tokens) and the answers
// would travel unencrypted and unauthenticated. New logs them. Each names the configuration key
// of the endpoint (cloud.endpoint, cloud.eip_endpoint).
func EndpointWarnings(opts Options) []string {
	var ws []string
	for _, e := range []struct{ key, url string }{{"cloud.endpoint", opts.Endpoint}, {"cloud.eip_endpoint", opts.EIPEndpoint}} {
		u, err := url.Parse(e.url)
		if err != nil || !strings.EqualFold(u.Scheme, "http") || isLoopback(u.Hostname()) {
			continue
		}
		ws = append(ws, fmt.Sprintf("%s %s is plain http to a host that is not loopback: requests, their signatures and the answers travel unencrypted; use https://", e.key, e.url))
	}
	return ws
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// NodeID returns this node's instance id, resolved by New; "" for a nil Client. It makes no
// call and takes no lock.
func (c *Client) NodeID() string {
	if c == nil {
		return ""
	}
	return c.nodeID
}

// apiCall is one request of the documented HTTP API.
type apiCall struct {
	op     string // names the call in errors and logs, such as "havip.attach havip-1"
	metric string // one of the Op* constants, for Options.OnRequest
	method string
	eip    bool // sent to the EIP endpoint
	path   string
	// query holds the query parameters; a flag such as "attach" has the value "".
	query  map[string]string
	body   any // JSON-encoded when not nil
	result any // JSON-decoded from a successful answer when not nil

	// attempts counts the attempts sent, and status and requestID are those of the last
	// successful answer, for Options.OnCall; one goroutine sends the attempts of a call.
	attempts  int
	status    int
	requestID string

	// adm is what the call waits for the limiter with; nil takes its priority from the
	// operation and the context.
	adm *admission
	// table, for a route rule mutation, is its route table: reads of the table sent before
	// the mutation are not shared with callers after it.
	table string
	// onSend, if set, is told when each attempt was admitted, just before it is sent.
	onSend func(at time.Time)
}

func (a *apiCall) mutating() bool { return a.method != http.MethodGet }

// queryString renders the query for logs, flags first then sorted keys; it holds no secret.
func (a *apiCall) queryString() string {
	keys := make([]string, 0, len(a.query))
	for k := range a.query {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		fi, fj := a.query[keys[i]] == "", a.query[keys[j]] == ""
		if fi != fj {
			return fi
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		if v := a.query[k]; v != "" {
			b.WriteString("=" + v)
		}
	}
	return b.String()
}

// errDryRun is returned by do for a mutating call that dry-run mode did not send.
var errDryRun = errors.New("dry-run: not sent")

// do sends the call through the retry policy. Each attempt is a freshly built and signed
// request, so an attempt that failed with RequestExpired is retried with a new signature while
// the clientToken in the query stays the same. Each attempt waits for the limiter first.
func (c *Client) do(ctx context.Context, a *apiCall) error {
	if err := c.announce(a); err != nil {
		return err
	}
	return c.policy(ctx, a).Do(ctx, a.op, func(ctx context.Context) error { return c.send(ctx, a) })
}

// policy is the retry policy of call a: the Client's, admitting each attempt through the
// limiter with a's priority.
func (c *Client) policy(ctx context.Context, a *apiCall) cloud.RetryPolicy {
	if a.adm == nil {
		a.adm = newAdmission(callPriority(ctx, a))
	}
	p := c.retry
	adm := a.adm
	p.Admit = func(ctx context.Context) error { return c.lim.wait(ctx, adm) }
	// The reads that check or report leave a throttled account's quota to the claims.
	p.Yield = c.lim.priorityOf(adm) >= prioConfirm
	return p
}

// announce logs a mutating call before it is sent; in dry-run mode it returns errDryRun
// instead, and the call must not be sent.
func (c *Client) announce(a *apiCall) error {
	if !a.mutating() {
		return nil
	}
	attrs := []any{"op", a.op, "method", a.method, "path", a.path, "query", a.queryString()}
	if a.body != nil {
		b, _ := json.Marshal(a.body)
		attrs = append(attrs, "body", string(b))
	}
	if c.opts.DryRun {
		c.logger.Info("dry-run: would call the cloud API", attrs...)
		return errDryRun
	}
	c.logger.Info("calling the cloud API", attrs...)
	return nil
}

func (c *Client) send(ctx context.Context, a *apiCall) error {
	now := time.Now()
	if a.table != "" && a.mutating() {
		c.tables.wrote(a.table, now)
	}
	if a.onSend != nil {
		a.onSend(now)
	}
	creds, err := c.creds.Credentials(ctx)
	if err != nil {
		return &cloud.TransportError{Operation: a.op, Err: err}
	}
	endpoint := c.opts.Endpoint
	if a.eip {
		endpoint = c.opts.EIPEndpoint
	}
	// A BceClient per attempt is a few words: it lets every attempt carry the credentials of
	// the moment (refreshed role credentials) without sharing mutable state between goroutines.
	// The HTTP client, and so the connections, are shared.
	bc := &sdk.BceClient{
		Config: &sdk.BceClientConfiguration{
			Endpoint:  endpoint,
			Region:    c.opts.Region,
			UserAgent: c.opts.UserAgent,
			Credentials: &auth.BceCredentials{AccessKeyId: creds.AccessKeyID,
				SecretAccessKey: creds.secretAccessKey(), SessionToken: creds.sessionToken()},
			SignOption:                &auth.SignOptions{HeadersToSign: auth.DEFAULT_HEADERS_TO_SIGN, ExpireSeconds: auth.DEFAULT_EXPIRE_SECONDS},
			Retry:                     sdk.NewNoRetryPolicy(),
			ConnectionTimeoutInMillis: int(c.opts.Timeout.Milliseconds()),
		},
		Signer:     &auth.BceV1Signer{},
		HTTPClient: c.hc,
	}
	req := &sdk.BceRequest{}
	req.SetUri(a.path)
	req.SetMethod(a.method)
	for k, v := range a.query {
		req.SetParam(k, v)
	}
	if a.body != nil {
		b, err := json.Marshal(a.body)
		if err != nil {
			return &cloud.PermanentError{Op: a.op, Reason: "encoding request body: " + err.Error()}
		}
		body, err := sdk.NewBodyFromBytes(b)
		if err != nil {
			return &cloud.PermanentError{Op: a.op, Reason: "encoding request body: " + err.Error()}
		}
		req.SetBody(body)
	}
	ctx, probe := withProbe(ctx)
	req.SetContext(ctx)
	start := time.Now()
	a.attempts++
	a.status, a.requestID = 0, ""
	err = c.exchange(bc, req, a, probe)
	var ae *cloud.APIError
	switch {
	case cloud.IsThrottled(err) && errors.As(err, &ae):
		// The account is over its quota: the calls that matter less wait with this one.
		p := callPriority(ctx, a)
		if a.adm != nil {
			p = c.lim.priorityOf(a.adm)
		}
		c.lim.throttled(p, min(ae.RetryAfter, cloud.DefaultMaxRetryAfter))
	case errors.As(err, &ae) || err == nil:
		c.lim.answered()
	}
	if c.opts.OnRequest != nil {
		c.opts.OnRequest(a.metric, requestCode(ctx, err), time.Since(start))
	}
	if c.opts.OnCall != nil {
		c.opts.OnCall(ctx, a.record(requestCode(ctx, err), err, time.Since(start)))
	}
	return err
}

// record describes the attempt just made for Options.OnCall.
func (a *apiCall) record(code string, err error, d time.Duration) cloud.CallRecord {
	r := cloud.CallRecord{Operation: a.metric, Target: a.op, Mutating: a.mutating(), Attempt: a.attempts,
		Code: code, ClientToken: a.query["clientToken"], Duration: d, Status: a.status, RequestID: a.requestID}
	var ae *cloud.APIError
	if errors.As(err, &ae) {
		r.Status, r.ErrorCode, r.RequestID = ae.StatusCode, ae.Code, ae.RequestID
	}
	return r
}

// exchange sends one signed request and reads its answer into a.result. probe is the
// attempt's, set by the bounded transport.
func (c *Client) exchange(bc *sdk.BceClient, req *sdk.BceRequest, a *apiCall, probe *answerProbe) error {
	resp := &sdk.BceResponse{}
	if err := bc.SendRequest(req, resp); err != nil {
		var se *sdk.BceServiceError
		if errors.As(err, &se) {
			if perr := probe.err(); perr != nil {
				// The SDK decoded a cut answer: its code and message are noise. The
				// status still tells a rejected request from a failing server.
				ae := cloud.NewAPIError(a.op, se.StatusCode, "", "error "+perr.Error(), resp.Header(requestIDHeader))
				return &malformedError{ae}
			}
			ae := cloud.NewAPIError(a.op, se.StatusCode, se.Code, se.Message, se.RequestId)
			ae.RetryAfter = parseRetryAfter(resp.Header("Retry-After"), time.Now())
			return ae
		}
		return &cloud.TransportError{Operation: a.op, Err: err}
	}
	defer resp.Body().Close()
	a.status, a.requestID = resp.StatusCode(), cloud.Clamp(resp.RequestId(), cloud.MaxRequestIDLen)
	b, err := io.ReadAll(io.LimitReader(resp.Body(), maxAnswer+1))
	if err == nil && len(b) > maxAnswer {
		err = errAnswerTooLarge
	}
	if errors.Is(err, errAnswerTooLarge) {
		return &malformedError{&cloud.PermanentError{Op: a.op, Reason: fmt.Sprintf("answer larger than %d bytes", maxAnswer)}}
	}
	if err != nil {
		return &cloud.TransportError{Operation: a.op, Err: fmt.Errorf("reading answer: %w", err)}
	}
	if a.result == nil {
		return nil
	}
	if err := json.Unmarshal(b, a.result); err != nil {
		return &cloud.TransportError{Operation: a.op, Err: &decodeError{err}}
	}
	return nil
}

// requestIDHeader carries the request id of every answer.
const requestIDHeader = "x-bce-request-id"

// malformedError marks an oversized answer for the request code. It wraps a PermanentError
// (a successful answer too large to use) or an APIError (an error answer too large to read,
// classified by its status).
type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }

// Unwrap exposes the wrapped error to errors.As.
func (e *malformedError) Unwrap() error { return e.err }

// decodeError marks an answer that is not the JSON expected.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decoding answer: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// requestCode names the outcome of one attempt for Options.OnRequest.
func requestCode(ctx context.Context, err error) string {
	var ae *cloud.APIError
	var me *malformedError
	var de *decodeError
	switch {
	case err == nil:
		return CodeOK
	case errors.As(err, &me), errors.As(err, &de):
		return CodeMalformed
	case errors.As(err, &ae):
		switch {
		case ae.Code != "" && cloud.KnownCode(ae.Code):
			return ae.Code
		case ae.Code == "" && ae.StatusCode >= 400 && ae.StatusCode <= 599:
			return "HTTP" + strconv.Itoa(ae.StatusCode)
		}
		return CodeOther
	case errors.Is(ctx.Err(), context.Canceled):
		return CodeCanceled
	case ctx.Err() != nil:
		return CodeTimeout
	}
	// The SDK flattens transport errors into strings, so a dial or TLS timeout shows only in
	// the message.
	var ne net.Error
	if (errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "timeout") {
		return CodeTimeout
	}
	return CodeNetwork
}

// parseRetryAfter parses a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}
