package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// DefaultEndpoint is the metadata service of a BCE instance.
const DefaultEndpoint = "http://169.254.169.254"

// RoleCredentialsPath is where the metadata service answers the temporary credentials of the
// instance's IAM role (BCC, "Set IAM Role"): one request, no role-name step.
const RoleCredentialsPath = "/latest/meta-data/sts-credential"

const (
	instanceIDPath = "/1.0/meta-data/instance-shortid"
	// maxBody bounds what we read from the service: the answers are tiny.
	maxBody = 64 << 10
	// defaultTimeout bounds one request when the caller's context has no tighter deadline.
	defaultTimeout = 3 * time.Second
)

// validInstanceID reports the form of a BCC/BBC short instance id, such as
// "i-7vEtzxRc": "i-" and 1 to 64 letters or digits.
func validInstanceID(s string) bool {
	rest, ok := strings.CutPrefix(s, "i-")
	return ok && cloud.ASCIIName(rest, 1, 64, "")
}

// Client reads the metadata service.
type Client struct {
	endpoint string
	hc       *http.Client
}

// New returns a client for the metadata service at endpoint (DefaultEndpoint when empty), using
// httpClient (a client with a timeout when nil).
func New(endpoint string, httpClient *http.Client) *Client {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: defaultTimeout}
	}
	return &Client{endpoint: strings.TrimRight(endpoint, "/"), hc: httpClient}
}

// InstanceID returns this instance's short id, such as "i-7vEtzxRc".
func (c *Client) InstanceID(ctx context.Context) (string, error) {
	b, err := c.get(ctx, instanceIDPath)
	if err != nil {
		return "", err
	}
	return ParseInstanceID(b)
}

// ParseInstanceID validates the body of the instance-shortid answer.
func ParseInstanceID(b []byte) (string, error) {
	id := strings.TrimSpace(string(b))
	if !validInstanceID(id) {
		return "", fmt.Errorf("metadata %s: answer %q is not an instance id", instanceIDPath, truncate(id, 40))
	}
	return id, nil
}

// RoleCredentials are temporary credentials of the instance's IAM role. Their secret parts are
// reachable only through methods and are never printed by fmt or slog.
type RoleCredentials struct {
	AccessKeyID string
	Expiration  time.Time
	// s is a pointer so that printing a struct that embeds RoleCredentials in an unexported
	// field shows an address, not the secret.
	s *roleSecret
}

type roleSecret struct{ secretAccessKey, sessionToken string }

// SecretAccessKey returns the secret access key.
func (c RoleCredentials) SecretAccessKey() string {
	if c.s == nil {
		return ""
	}
	return c.s.secretAccessKey
}

// SessionToken returns the STS session token.
func (c RoleCredentials) SessionToken() string {
	if c.s == nil {
		return ""
	}
	return c.s.sessionToken
}

// String describes the credentials without their secrets.
func (c RoleCredentials) String() string {
	return fmt.Sprintf("RoleCredentials{AccessKeyID: %s, SecretAccessKey: [redacted], SessionToken: [redacted], Expiration: %s}",
		c.AccessKeyID, c.Expiration.Format(time.RFC3339))
}

// GoString is String: %#v must not print the secrets either.
func (c RoleCredentials) GoString() string { return c.String() }

// Format prints String for every verb.
func (c RoleCredentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the credentials without their secrets.
func (c RoleCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.Time("expiration", c.Expiration))
}

// RoleCredentials fetches the temporary credentials of the instance's role, in one request:
// the metadata service answers for the role attached to the calling instance.
func (c *Client) RoleCredentials(ctx context.Context) (RoleCredentials, error) {
	b, err := c.get(ctx, RoleCredentialsPath)
	if err != nil {
		return RoleCredentials{}, err
	}
	return ParseRoleCredentials(b)
}

// Field names of the credentials document. Baidu's STS answers spell the secret
// secretAccessKey (the SDK's GetSessionTokenResult) and its console says Access Key Secret; the
// IAM role page shows no body, so both spellings are accepted.
const (
	fieldAccessKeyID     = "accessKeyId"
	fieldSecretAccessKey = "secretAccessKey"
	fieldAccessKeySecret = "accessKeySecret"
	fieldSessionToken    = "sessionToken"
	fieldExpiration      = "expiration"
)

// maxFieldsNamed bounds the field names an error lists, against a document of many keys.
const maxFieldsNamed = 16

// ParseRoleCredentials parses the credentials document: a JSON object with accessKeyId,
// secretAccessKey (or accessKeySecret), sessionToken and expiration (RFC 3339). Field names match
// regardless of case, as the SDK's own decoding of STS answers (untagged fields) does; other
// fields are ignored. Its errors never quote a value of the document, which holds secrets: a
// document that cannot be used is described by the field names it held.
func ParseRoleCredentials(b []byte) (RoleCredentials, error) {
	const where = "metadata " + RoleCredentialsPath
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return RoleCredentials{}, fmt.Errorf("%s: malformed JSON at offset %d", where, se.Offset)
		}
		return RoleCredentials{}, fmt.Errorf("%s: the answer is not a JSON object", where)
	}
	held := fieldNames(doc)
	fail := func(format string, args ...any) (RoleCredentials, error) {
		return RoleCredentials{}, fmt.Errorf("%s: %s (the answer held the fields: %s)", where, fmt.Sprintf(format, args...), held)
	}
	fields := map[string]string{}
	for k, raw := range doc {
		name := canonicalField(k)
		if name == "" {
			continue
		}
		if _, dup := fields[name]; dup {
			return fail("field %s appears twice", name)
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fail("field %s is not a string", k)
		}
		fields[name] = v
	}
	secret, alt := fields[fieldSecretAccessKey], fields[fieldAccessKeySecret]
	if secret != "" && alt != "" && secret != alt {
		return fail("fields %s and %s disagree", fieldSecretAccessKey, fieldAccessKeySecret)
	}
	if secret == "" {
		secret = alt
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{fieldAccessKeyID, fields[fieldAccessKeyID]},
		{fieldSecretAccessKey + " (or " + fieldAccessKeySecret + ")", secret},
		{fieldSessionToken, fields[fieldSessionToken]}, {fieldExpiration, fields[fieldExpiration]}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fail("missing or empty %s", strings.Join(missing, ", "))
	}
	exp, err := time.Parse(time.RFC3339, fields[fieldExpiration])
	if err != nil {
		return fail("field %s is not an RFC 3339 time", fieldExpiration)
	}
	return RoleCredentials{AccessKeyID: fields[fieldAccessKeyID], Expiration: exp,
		s: &roleSecret{secretAccessKey: secret, sessionToken: fields[fieldSessionToken]}}, nil
}

// canonicalField returns the documented name of a credentials field, "" for any other key.
func canonicalField(k string) string {
	for _, name := range []string{fieldAccessKeyID, fieldSecretAccessKey, fieldAccessKeySecret, fieldSessionToken, fieldExpiration} {
		if strings.EqualFold(k, name) {
			return name
		}
	}
	return ""
}

// fieldNames lists the keys of doc, sorted and clamped, for an error: names only, never values.
func fieldNames(doc map[string]json.RawMessage) string {
	if len(doc) == 0 {
		return "none"
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, cloud.Clamp(k, 40))
	}
	sort.Strings(names)
	if len(names) > maxFieldsNamed {
		names = append(names[:maxFieldsNamed], fmt.Sprintf("and %d more", len(names)-maxFieldsNamed))
	}
	return strings.Join(names, ", ")
}

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+path, nil)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", path, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", path, err)
	}
	// Closing a body not read to its end drops the connection: the rest is never read.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The body of a failure is of no use: it is not read at all.
		return nil, fmt.Errorf("metadata %s: HTTP %d", path, resp.StatusCode)
	}
	if resp.ContentLength > maxBody {
		return nil, fmt.Errorf("metadata %s: answer of %d bytes, larger than %d", path, resp.ContentLength, maxBody)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("metadata %s: reading answer: %w", path, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("metadata %s: answer larger than %d bytes", path, maxBody)
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
