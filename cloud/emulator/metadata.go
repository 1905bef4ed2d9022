package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"time"
)

// maxMintedCredentials bounds the instance-role credentials kept at once.
const maxMintedCredentials = 1000

// callerInstance finds the instance whose private IP is the caller's source address.
func (e *Emulator) callerInstance(c *call) *instance {
	a, err := netip.ParseAddr(c.source)
	if err != nil {
		return nil
	}
	a = a.Unmap()
	for _, in := range e.w.instances {
		if in.ip == a {
			return in
		}
	}
	return nil
}

func textAnswer(s string) answer { return answer{status: 200, body: []byte(s)} }

func (e *Emulator) metaInstanceID(c *call) answer {
	in := e.callerInstance(c)
	if in == nil {
		return answer{err: errf(404, "NoSuchObject", "No instance has the address %s.", c.source)}
	}
	return textAnswer(in.id)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// metaSTSCredential mints temporary credentials of the calling instance's role. The page
// documenting the path shows no body: the fields are those of an STS session token
// (accessKeyId, secretAccessKey, sessionToken, createTime, expiration).
func (e *Emulator) metaSTSCredential(c *call) answer {
	in := e.callerInstance(c)
	if in == nil || in.role == "" {
		return answer{err: errf(404, "NoSuchObject", "No instance role for %s.", c.source)}
	}
	role := in.role
	now := e.nowLocked()
	// Drop expired minted credentials, and the oldest ones beyond the cap.
	var minted []*credential
	for ak, cr := range e.creds {
		if !cr.minted {
			continue
		}
		if now.After(cr.expires) {
			delete(e.creds, ak)
			continue
		}
		minted = append(minted, cr)
	}
	if len(minted) >= maxMintedCredentials {
		oldest := minted[0]
		for _, cr := range minted {
			if cr.expires.Before(oldest.expires) {
				oldest = cr
			}
		}
		delete(e.creds, oldest.accessKeyID)
	}
	cr := &credential{
		accessKeyID:     "STS" + randHex(12),
		secretAccessKey: randHex(16),
		sessionToken:    "sts-" + randHex(48),
		expires:         now.Add(e.opts.CredentialTTL).Truncate(time.Second),
		minted:          true,
	}
	e.creds[cr.accessKeyID] = cr
	c.change(in.id, "", cr.accessKeyID, "minted role %s credential %s for %s until %s", role, cr.accessKeyID, in.id, cr.expires.Format(time.RFC3339))
	return okJSON(map[string]string{
		"accessKeyId":     cr.accessKeyID,
		"secretAccessKey": cr.secretAccessKey,
		"sessionToken":    cr.sessionToken,
		"createTime":      now.UTC().Truncate(time.Second).Format(time.RFC3339),
		"expiration":      cr.expires.UTC().Format(time.RFC3339),
	})
}
