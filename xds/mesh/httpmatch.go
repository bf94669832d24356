package mesh

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
)

// headerName is an HTTP header name (an RFC 9110 token), as Envoy requires.
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

var knownMethods = map[string]bool{
	"*": true, "GET": true, "HEAD": true, "PUT": true, "POST": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// CheckHTTPMatch says what of an HTTPRouteGroup match a proxy could not
// enforce: regexes RE2 does not compile, unknown methods, header names that
// are not HTTP tokens. The model leaves such a match out; the admission
// webhook denies it.
func CheckHTTPMatch(m specsv1alpha4.HTTPMatch) []error {
	var errs []error
	if m.PathRegex != "" {
		if err := checkRegex(m.PathRegex); err != nil {
			errs = append(errs, fmt.Errorf("pathRegex: %w", err))
		}
	}
	for _, meth := range m.Methods {
		if !knownMethods[strings.ToUpper(meth)] {
			errs = append(errs, fmt.Errorf("unknown method %q", meth))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		if !headerName.MatchString(k) {
			errs = append(errs, fmt.Errorf("%q is not an HTTP header name", k))
		}
		if err := checkRegex(m.Headers[k]); err != nil {
			errs = append(errs, fmt.Errorf("header %q: %w", k, err))
		}
	}
	return errs
}

// checkRegex says whether the mesh's proxies accept a regex: RE2 (Envoy's
// engine) compiles it into a program no larger than the limit their
// bootstraps set, counted as RE2 counts it.
func checkRegex(re string) error {
	regexChecks.mu.Lock()
	err, ok := regexChecks.m[re]
	regexChecks.mu.Unlock()
	if ok {
		return err
	}
	err = compileRegex(re)
	regexChecks.mu.Lock()
	defer regexChecks.mu.Unlock()
	if len(regexChecks.m) >= 4096 { // bounded: a fresh start costs one compile each
		clear(regexChecks.m)
	}
	regexChecks.m[re] = err
	return err
}

// regexChecks remembers what checkRegex found: every model build checks
// every HTTPRouteGroup, and the regexes rarely change.
var regexChecks = struct {
	mu sync.Mutex
	m  map[string]error
}{m: map[string]error{}}

func compileRegex(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return err
	}
	size, err := envoyrules.RE2ProgramSize(re)
	if err != nil {
		return err
	}
	if size > envoyrules.MeshRegexLimit {
		return fmt.Errorf("%q compiles to an RE2 program of %d instructions; the mesh's proxies accept at most %d", re, size, envoyrules.MeshRegexLimit)
	}
	return nil
}
