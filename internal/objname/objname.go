// Package objname makes the names the operator derives from others' names
// (a service account's, a MeshVM's, a mesh's) fit where Kubernetes limits
// an object's name: the start of the name, and a hash of what it stands for.
// The names are stored, so the rule must never change what it gives.
package objname

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Cut is name cut short so that, with a dash and the first hashLen hex
// digits of the SHA-256 of key appended, it is at most max characters long.
// The cut drops the dots and dashes it ends on: a DNS label ends in a letter
// or digit, and so must what comes before the dash. key is what the name
// stands for (the whole of it, before any prefix or rewriting), so that two
// keys whose names cut the same still get distinct names.
func Cut(name, key string, max, hashLen int) string {
	sum := sha256.Sum256([]byte(key))
	start := strings.TrimRight(name[:min(len(name), max-1-hashLen)], ".-")
	return start + "-" + hex.EncodeToString(sum[:])[:hashLen]
}
