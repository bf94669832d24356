package mesh

import "strings"

// ParseSPIFFE reads a workload identity's SPIFFE ID as a certificate spells
// it: spiffe://<trust domain>/ns/<namespace>/sa/<service account>, exactly,
// with names of the characters Kubernetes and trust domains allow
// (lowercase letters, digits, '-' and '.'). Anything a URI parser would read
// past or decode (userinfo, a port, a query, a fragment, escapes, another
// case) is not an identity: the sidecars match SANs as whole strings, and
// who a certificate names must not depend on the reader.
func ParseSPIFFE(raw string) (trustDomain string, id Identity, ok bool) {
	rest, found := strings.CutPrefix(raw, "spiffe://")
	if !found {
		return "", Identity{}, false
	}
	trustDomain, rest, found = strings.Cut(rest, "/ns/")
	if !found {
		return "", Identity{}, false
	}
	ns, sa, found := strings.Cut(rest, "/sa/")
	if !found || !plainName(trustDomain) || !plainName(ns) || !plainName(sa) {
		return "", Identity{}, false
	}
	return trustDomain, Identity{Namespace: ns, ServiceAccount: sa}, true
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
