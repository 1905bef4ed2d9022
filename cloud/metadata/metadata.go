package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// DefaultEndpoint is the metadata service of a BCE instance.
const DefaultEndpoint = "http://169.254.169.254"

const (
	instanceIDPath = "/1.0/meta-data/instance-shortid"
	rolePath       = "/1.0/meta-data/iam/security-credentials/"
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

// validRoleName accepts IAM role names (1 to 128 of letters, digits and
// _.@+=,-); anything else would be spliced into a URL path.
func validRoleName(s string) bool { return cloud.ASCIIName(s, 1, 128, "_.@+=,-") }

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
	Role        string
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
	return fmt.Sprintf("RoleCredentials{Role: %s, AccessKeyID: %s, SecretAccessKey: [redacted], SessionToken: [redacted], Expiration: %s}",
		c.Role, c.AccessKeyID, c.Expiration.Format(time.RFC3339))
}

// GoString is String: %#v must not print the secrets either.
func (c RoleCredentials) GoString() string { return c.String() }

// Format prints String for every verb.
func (c RoleCredentials) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue logs the credentials without their secrets.
func (c RoleCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role", c.Role), slog.String("access_key_id", c.AccessKeyID),
		slog.Time("expiration", c.Expiration))
}

// RoleCredentials fetches the credentials of the instance's role: the role name first, then
// its credentials.
func (c *Client) RoleCredentials(ctx context.Context) (RoleCredentials, error) {
	b, err := c.get(ctx, rolePath)
	if err != nil {
		return RoleCredentials{}, err
	}
	role, err := ParseRoleName(b)
	if err != nil {
		return RoleCredentials{}, err
	}
	b, err = c.get(ctx, rolePath+role)
	if err != nil {
		return RoleCredentials{}, err
	}
	rc, err := ParseRoleCredentials(b)
	if err != nil {
		return RoleCredentials{}, err
	}
	rc.Role = role
	return rc, nil
}

// ParseRoleName validates the answer listing the instance's role (the first line).
func ParseRoleName(b []byte) (string, error) {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" {
		return "", fmt.Errorf("metadata %s: no role is attached to this instance", rolePath)
	}
	if !validRoleName(s) {
		return "", fmt.Errorf("metadata %s: answer %q is not a role name", rolePath, truncate(s, 40))
	}
	return s, nil
}

// ParseRoleCredentials parses the credentials document
// {"accessKeyId","secretAccessKey","sessionToken","expiration"}. Its errors never quote the
// document, which holds secrets.
func ParseRoleCredentials(b []byte) (RoleCredentials, error) {
	var doc struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
		Expiration      string `json:"expiration"`
	}
	const where = "metadata " + rolePath + "{role}"
	if err := json.Unmarshal(b, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return RoleCredentials{}, fmt.Errorf("%s: malformed JSON at offset %d", where, se.Offset)
		}
		return RoleCredentials{}, fmt.Errorf("%s: unexpected JSON document", where)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"accessKeyId", doc.AccessKeyID},
		{"secretAccessKey", doc.SecretAccessKey}, {"sessionToken", doc.SessionToken}, {"expiration", doc.Expiration}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return RoleCredentials{}, fmt.Errorf("%s: missing %s", where, strings.Join(missing, ", "))
	}
	exp, err := time.Parse(time.RFC3339, doc.Expiration)
	if err != nil {
		return RoleCredentials{}, fmt.Errorf("%s: expiration %q is not RFC 3339", where, truncate(doc.Expiration, 40))
	}
	return RoleCredentials{AccessKeyID: doc.AccessKeyID, Expiration: exp,
		s: &roleSecret{secretAccessKey: doc.SecretAccessKey, sessionToken: doc.SessionToken}}, nil
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
