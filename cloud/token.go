package cloud

import (
	"crypto/sha256"
	"encoding/hex"
)

// TokenLen is the length of the clientTokens Token returns. The API accepts ASCII tokens of up
// to 64 characters; 32 hex digits carry 128 bits, ample to keep distinct actions apart.
const TokenLen = 32

// Token derives the clientToken of one mutating action from tokenBase, which identifies a
// (transition, resource) pair, and action, which names the call and its target (for example
// "havip.attach/i-abc"). It is the first TokenLen hex digits of
// SHA-256(tokenBase || 0x00 || action): deterministic, so a retry of the same action, even from
// a later Claim of the same transition, reuses the token and the server applies the action at
// most once; distinct per action, so two different calls never share a token (which the server
// would reject as IdempotentParameterMismatch).
func Token(tokenBase, action string) string {
	h := sha256.New()
	h.Write([]byte(tokenBase))
	h.Write([]byte{0})
	h.Write([]byte(action))
	return hex.EncodeToString(h.Sum(nil))[:TokenLen]
}
