package cloud

import "strings"

// ASCIIName reports whether s has minLen to maxLen bytes, each an ASCII letter,
// a digit or one of extra: the shape of instance ids, role names, regions
// and resource names. Hand-written rather than regular expressions, whose
// compilation at start cost every short-lived command about a millisecond.
func ASCIIName(s string, minLen, maxLen int, extra string) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
