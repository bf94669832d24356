package v1alpha1_test

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Any valid service account name gives a valid identity Secret and
// Certificate name, no two service accounts share one (not even a service
// account named after another's hashed name), and names that fitted before
// are unchanged, so that an upgrade re-issues nothing.
func TestIdentitySecretNames(t *testing.T) {
	long := func(n int, unit string) string { return strings.Repeat(unit, n/len(unit)+1)[:n-1] + "z" }
	accounts := []string{
		"default", "web", "a", "a.b-c",
		long(240, "a"), long(241, "a"), long(245, "a"), long(253, "a"),
		long(245, "long-name."), long(253, "x.y-"),
		// The same first 253 characters but one.
		long(252, "a") + "b", long(252, "a") + "c",
		// The start of a long name ends in a dot or a dash at the cut.
		strings.Repeat("a", 206) + ".bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		strings.Repeat("a", 206) + "-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	}
	// An attacker names service accounts after the hashed names of others,
	// and after their tails.
	for _, sa := range slices.Clone(accounts) {
		if name := meshv1alpha1.IdentitySecretName(sa); strings.HasPrefix(name, meshv1alpha1.IdentitySecretHashedPrefix) {
			accounts = append(accounts, name, strings.TrimPrefix(name, meshv1alpha1.IdentitySecretHashedPrefix))
		}
	}
	seen := map[string]string{}
	for _, sa := range accounts {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			t.Fatalf("test service account %q is not valid: %v", sa, errs)
		}
		name := meshv1alpha1.IdentitySecretName(sa)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("the name of service account %q (%d characters) is not an object name: %v", sa, len(sa), errs)
		}
		if !meshv1alpha1.IsIdentitySecretName(name) {
			t.Errorf("IsIdentitySecretName(%q) is false", name)
		}
		if other, ok := seen[name]; ok && other != sa {
			t.Errorf("service accounts %q and %q share the name %q", other, sa, name)
		}
		seen[name] = sa
		if got := meshv1alpha1.IdentitySecretName(sa); got != name {
			t.Errorf("the name of %q changed from %q to %q", sa, name, got)
		}
		if len(meshv1alpha1.IdentitySecretPrefix+sa) <= 253 && name != meshv1alpha1.IdentitySecretPrefix+sa {
			t.Errorf("the name of %q is %q, want it unchanged: %q", sa, name, meshv1alpha1.IdentitySecretPrefix+sa)
		}
	}
	if meshv1alpha1.IsIdentitySecretName("osm-books-xds-tls") || meshv1alpha1.IsIdentitySecretName("osm-identity") {
		t.Error("IsIdentitySecretName accepts names that are not of identities")
	}
}

// The names of identity Secrets and Certificates are stored: a change of
// IdentitySecretName re-issues every identity after an upgrade and leaves
// the old Secrets behind. These are the names it gave when they were
// pinned, short and hashed.
func TestIdentitySecretNamesArePinned(t *testing.T) {
	for _, c := range []struct{ sa, want string }{
		{"web", "osm-identity-web"},
		{strings.Repeat("a", 240), "osm-identity-" + strings.Repeat("a", 240)},
		{strings.Repeat("a", 241), "osm-identity." + strings.Repeat("a", 207) + "-ec6e326ef29fe322b62111584194c54e"},
		{strings.Repeat("ab.c-", 50) + "xyz", "osm-identity." + strings.Repeat("ab.c-", 41) + "ab-7b9b7c4b06a499d7e9983bf9e3f09dcd"},
		// The cut falls after a dot, which goes.
		{strings.Repeat("a", 206) + ".b" + strings.Repeat("c", 40), "osm-identity." + strings.Repeat("a", 206) + "-0e2d83e09dce2f0ad5d1b7c3666bb204"},
	} {
		if got := meshv1alpha1.IdentitySecretName(c.sa); got != c.want {
			t.Errorf("IdentitySecretName(%.20s… of %d) = %q, want %q", c.sa, len(c.sa), got, c.want)
		}
	}
}
