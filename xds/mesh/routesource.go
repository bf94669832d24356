package mesh

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// routeSource is a route object of either kind read into one form: its
// rules with their matches and actions, the backends not yet resolved
// (that depends on the parent), and what in it the mesh cannot carry out.
type routeSource struct {
	kind    RouteKind
	obj     metav1.Object
	parents []gwv1.ParentReference
	rules   []sourceRule
	// unsupported are the fields the mesh does not implement or cannot
	// enforce as written, each "field: why": the route is not accepted.
	unsupported []string
}

type sourceRule struct {
	name string
	// faultPolicy names the ResiliencePolicy whose fault the rule injects
	// (an ExtensionRef filter), "" for none.
	faultPolicy string
	matches     []RouteMatch
	action      RouteAction // without Backends and Mirrors, which resolve per parent
	backends    []sourceBackend
	mirrors     []sourceMirror
}

type sourceBackend struct {
	field   string
	ref     gwv1.BackendObjectReference
	weight  int32
	headers HeaderModifier
}

type sourceMirror struct {
	field                  string
	ref                    gwv1.BackendObjectReference
	numerator, denominator uint32
}

func (s *routeSource) unsupportedf(field, format string, args ...any) {
	s.unsupported = append(s.unsupported, field+": "+fmt.Sprintf(format, args...))
}

// httpRouteSource reads an HTTPRoute.
func httpRouteSource(hr *gwv1.HTTPRoute) *routeSource {
	s := &routeSource{kind: KindHTTPRoute, obj: hr, parents: hr.Spec.ParentRefs}
	for i, r := range hr.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		sr := sourceRule{name: string(ptrOr(r.Name))}
		for j, m := range r.Matches {
			sr.matches = append(sr.matches, s.httpMatch(fmt.Sprintf("%s.matches[%d]", field, j), m))
		}
		if len(sr.matches) == 0 {
			sr.matches = []RouteMatch{{PathKind: PathPrefix, Path: "/"}}
		}
		for j, f := range r.Filters {
			s.httpFilter(fmt.Sprintf("%s.filters[%d]", field, j), f, &sr)
		}
		if rw := sr.action.Rewrite; rw != nil && rw.Path.Prefix != nil || sr.action.Redirect != nil && sr.action.Redirect.Path.Prefix != nil {
			for j, m := range sr.matches {
				if m.PathKind != PathPrefix {
					s.unsupportedf(fmt.Sprintf("%s.matches[%d].path", field, j), "ReplacePrefixMatch needs a PathPrefix match")
				}
			}
		}
		for j, be := range r.BackendRefs {
			filters := make([]backendFilter, len(be.Filters))
			for k, f := range be.Filters {
				filters[k] = backendFilter{string(f.Type), f.RequestHeaderModifier}
			}
			sr.backends = append(sr.backends, s.backend(fmt.Sprintf("%s.backendRefs[%d]", field, j), be.BackendRef, filters))
		}
		if t := r.Timeouts; t != nil {
			sr.action.Timeout = s.duration(field+".timeouts.request", t.Request)
			sr.action.BackendTimeout = s.duration(field+".timeouts.backendRequest", t.BackendRequest)
			if sr.action.Timeout > 0 && sr.action.BackendTimeout > sr.action.Timeout {
				s.unsupportedf(field+".timeouts.backendRequest", "is longer than the request timeout")
			}
		}
		if rt := r.Retry; rt != nil {
			sr.action.Retry = s.retry(field+".retry", rt)
		}
		if r.SessionPersistence != nil {
			s.unsupportedf(field+".sessionPersistence", "session persistence is not supported")
		}
		s.rules = append(s.rules, sr)
	}
	return s
}

// backendFilter is a filter of a backendRef, of either route kind: its
// type and its request header modifier, the one a backend may have.
type backendFilter struct {
	typ     string
	headers *gwv1.HTTPHeaderFilter
}

// backend reads a backendRef and its filters.
func (s *routeSource) backend(field string, be gwv1.BackendRef, filters []backendFilter) sourceBackend {
	sb := sourceBackend{field: field, ref: be.BackendObjectReference, weight: ptrOr(be.Weight, 1)}
	for k, f := range filters {
		ff := fmt.Sprintf("%s.filters[%d]", field, k)
		if f.typ != string(gwv1.HTTPRouteFilterRequestHeaderModifier) || f.headers == nil {
			s.unsupportedf(ff, "a backend's filter may only be a RequestHeaderModifier here, not %s", f.typ)
			continue
		}
		sb.headers = s.headerModifier(ff+".requestHeaderModifier", *f.headers)
	}
	return sb
}

// grpcRouteSource reads a GRPCRoute: a method match is a match of the path
// gRPC sends, "/<service>/<method>".
func grpcRouteSource(gr *gwv1.GRPCRoute) *routeSource {
	s := &routeSource{kind: KindGRPCRoute, obj: gr, parents: gr.Spec.ParentRefs}
	for i, r := range gr.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		sr := sourceRule{name: string(ptrOr(r.Name))}
		for j, m := range r.Matches {
			mf := fmt.Sprintf("%s.matches[%d]", field, j)
			rm := grpcMethodMatch(m.Method)
			if rm.PathKind == PathRegex {
				if err := checkRegex(rm.Path); err != nil {
					s.unsupportedf(mf+".method", "%v", err)
				}
			}
			for k, h := range m.Headers {
				regex := h.Type != nil && *h.Type == gwv1.GRPCHeaderMatchRegularExpression
				rm.Headers = appendFirst(rm.Headers, s.valueMatch(fmt.Sprintf("%s.headers[%d]", mf, k), string(h.Name), h.Value, regex))
			}
			sr.matches = append(sr.matches, rm)
		}
		if len(sr.matches) == 0 {
			sr.matches = []RouteMatch{{PathKind: PathPrefix, Path: "/"}}
		}
		for j, f := range r.Filters {
			ff := fmt.Sprintf("%s.filters[%d]", field, j)
			switch {
			case f.Type == gwv1.GRPCRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
				sr.action.RequestHeaders = s.headerModifier(ff+".requestHeaderModifier", *f.RequestHeaderModifier)
			case f.Type == gwv1.GRPCRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
				sr.action.ResponseHeaders = s.headerModifier(ff+".responseHeaderModifier", *f.ResponseHeaderModifier)
			case f.Type == gwv1.GRPCRouteFilterRequestMirror && f.RequestMirror != nil:
				sr.mirrors = append(sr.mirrors, s.mirror(ff+".requestMirror", *f.RequestMirror))
			case f.Type == gwv1.GRPCRouteFilterExtensionRef && f.ExtensionRef != nil:
				s.extensionRef(ff+".extensionRef", *f.ExtensionRef, &sr)
			default:
				s.unsupportedf(ff, "filter %s is not supported", f.Type)
			}
		}
		for j, be := range r.BackendRefs {
			filters := make([]backendFilter, len(be.Filters))
			for k, f := range be.Filters {
				filters[k] = backendFilter{string(f.Type), f.RequestHeaderModifier}
			}
			sr.backends = append(sr.backends, s.backend(fmt.Sprintf("%s.backendRefs[%d]", field, j), be.BackendRef, filters))
		}
		if r.SessionPersistence != nil {
			s.unsupportedf(field+".sessionPersistence", "session persistence is not supported")
		}
		s.rules = append(s.rules, sr)
	}
	return s
}

// grpcMethodMatch is the path match of a GRPCRoute method match: exact when
// both service and method are named exactly, a prefix for a service alone,
// else a regex with "[^/]+" for what is not named.
func grpcMethodMatch(m *gwv1.GRPCMethodMatch) RouteMatch {
	if m == nil || m.Service == nil && m.Method == nil {
		return RouteMatch{PathKind: PathPrefix, Path: "/"}
	}
	svc, meth := ptrOr(m.Service), ptrOr(m.Method)
	if m.Type != nil && *m.Type == gwv1.GRPCMethodMatchRegularExpression {
		return RouteMatch{PathKind: PathRegex, Path: "/" + cmpOr(svc, "[^/]+") + "/" + cmpOr(meth, "[^/]+")}
	}
	switch {
	case svc != "" && meth != "":
		return RouteMatch{PathKind: PathExact, Path: "/" + svc + "/" + meth}
	case svc != "":
		return RouteMatch{PathKind: PathPrefix, Path: "/" + svc}
	}
	return RouteMatch{PathKind: PathRegex, Path: "/[^/]+/" + regexp.QuoteMeta(meth)}
}

func (s *routeSource) httpMatch(field string, m gwv1.HTTPRouteMatch) RouteMatch {
	rm := RouteMatch{PathKind: PathPrefix, Path: "/"}
	if p := m.Path; p != nil {
		rm.PathKind = PathMatchKind(ptrOr(p.Type, gwv1.PathMatchPathPrefix))
		rm.Path = ptrOr(p.Value, "/")
		switch rm.PathKind {
		case PathExact, PathPrefix:
			if !strings.HasPrefix(rm.Path, "/") || strings.ContainsAny(rm.Path, "?#") {
				s.unsupportedf(field+".path.value", "%q must start with / and hold no ? or #", rm.Path)
			}
			if rm.PathKind == PathPrefix && len(rm.Path) > 1 {
				rm.Path = strings.TrimRight(rm.Path, "/")
				if rm.Path == "" {
					rm.Path = "/"
				}
			}
		case PathRegex:
			if err := checkRegex(rm.Path); err != nil {
				s.unsupportedf(field+".path.value", "%v", err)
			}
		default:
			s.unsupportedf(field+".path.type", "%q is not a path match type", rm.PathKind)
		}
	}
	if m.Method != nil {
		rm.Method = strings.ToUpper(string(*m.Method))
		if !knownMethods[rm.Method] || rm.Method == "*" {
			s.unsupportedf(field+".method", "unknown method %q", *m.Method)
		}
	}
	for i, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression
		rm.Headers = appendFirst(rm.Headers, s.valueMatch(fmt.Sprintf("%s.headers[%d]", field, i), string(h.Name), h.Value, regex))
	}
	for i, q := range m.QueryParams {
		regex := q.Type != nil && *q.Type == gwv1.QueryParamMatchRegularExpression
		// Query parameter names are case-sensitive, unlike header names.
		vm := s.valueMatch(fmt.Sprintf("%s.queryParams[%d]", field, i), string(q.Name), q.Value, regex)
		vm.Name = string(q.Name)
		rm.Query = appendFirst(rm.Query, vm)
	}
	return rm
}

// appendFirst appends m unless a match of its name is there: of entries of
// one name, only the first counts (Gateway API).
func appendFirst(ms []ValueMatch, m ValueMatch) []ValueMatch {
	for _, o := range ms {
		if o.Name == m.Name {
			return ms
		}
	}
	return append(ms, m)
}

func ptrTo[T any](v T) *T { return &v }

func (s *routeSource) valueMatch(field, name, value string, regex bool) ValueMatch {
	if !headerName.MatchString(name) {
		s.unsupportedf(field+".name", "%q is not an HTTP token", name)
	}
	if regex {
		if err := checkRegex(value); err != nil {
			s.unsupportedf(field+".value", "%v", err)
		}
	}
	return ValueMatch{Name: strings.ToLower(name), Value: value, Regex: regex}
}

func (s *routeSource) httpFilter(field string, f gwv1.HTTPRouteFilter, sr *sourceRule) {
	switch {
	case f.Type == gwv1.HTTPRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
		sr.action.RequestHeaders = s.headerModifier(field+".requestHeaderModifier", *f.RequestHeaderModifier)
	case f.Type == gwv1.HTTPRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
		sr.action.ResponseHeaders = s.headerModifier(field+".responseHeaderModifier", *f.ResponseHeaderModifier)
	case f.Type == gwv1.HTTPRouteFilterRequestRedirect && f.RequestRedirect != nil:
		rr := f.RequestRedirect
		rd := &Redirect{Scheme: ptrOr(rr.Scheme), Host: string(ptrOr(rr.Hostname)), Port: int32(ptrOr(rr.Port)), StatusCode: ptrOr(rr.StatusCode, 302)}
		if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
			s.unsupportedf(field+".requestRedirect.scheme", "%q is not http or https", rd.Scheme)
		}
		switch rd.StatusCode {
		case 301, 302, 303, 307, 308:
		default:
			s.unsupportedf(field+".requestRedirect.statusCode", "%d is not a redirect status", rd.StatusCode)
		}
		rd.Path = s.pathModifier(field+".requestRedirect.path", rr.Path)
		sr.action.Redirect = rd
	case f.Type == gwv1.HTTPRouteFilterURLRewrite && f.URLRewrite != nil:
		sr.action.Rewrite = &Rewrite{Host: string(ptrOr(f.URLRewrite.Hostname)), Path: s.pathModifier(field+".urlRewrite.path", f.URLRewrite.Path)}
	case f.Type == gwv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil:
		sr.mirrors = append(sr.mirrors, s.mirror(field+".requestMirror", *f.RequestMirror))
	case f.Type == gwv1.HTTPRouteFilterExtensionRef && f.ExtensionRef != nil:
		s.extensionRef(field+".extensionRef", *f.ExtensionRef, sr)
	default:
		s.unsupportedf(field, "filter %s is not supported", f.Type)
	}
	if sr.action.Redirect != nil && sr.action.Rewrite != nil {
		s.unsupportedf(field, "a rule may not both redirect and rewrite")
	}
}

// extensionRef reads an ExtensionRef filter: a ResiliencePolicy of the
// route's namespace, whose fault the rule injects.
func (s *routeSource) extensionRef(field string, ref gwv1.LocalObjectReference, sr *sourceRule) {
	if ref.Group != gwv1.Group(meshv1alpha1.GroupVersion.Group) || ref.Kind != "ResiliencePolicy" {
		s.unsupportedf(field, "%s %s of group %q is not an extension the mesh has (a ResiliencePolicy of group %s)", ref.Kind, ref.Name, ref.Group, meshv1alpha1.GroupVersion.Group)
		return
	}
	if sr.faultPolicy != "" {
		s.unsupportedf(field, "a rule names one ResiliencePolicy at most")
		return
	}
	sr.faultPolicy = string(ref.Name)
}

func (s *routeSource) pathModifier(field string, p *gwv1.HTTPPathModifier) PathRewrite {
	if p == nil {
		return PathRewrite{}
	}
	var v *string
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		v = p.ReplaceFullPath
	case gwv1.PrefixMatchHTTPPathModifier:
		v = p.ReplacePrefixMatch
	}
	// An empty prefix replacement is the root's: "/foo" replaced by ""
	// makes "/foo/bar" "/bar" (Gateway API's own table).
	if v != nil && *v == "" && p.Type == gwv1.PrefixMatchHTTPPathModifier {
		v = ptrTo("/")
	}
	if v == nil || !strings.HasPrefix(*v, "/") || strings.ContainsAny(*v, "?#") {
		s.unsupportedf(field, "needs a path of its type %s, starting with / and holding no ? or #", p.Type)
		return PathRewrite{}
	}
	if p.Type == gwv1.FullPathHTTPPathModifier {
		return PathRewrite{Full: v}
	}
	return PathRewrite{Prefix: v}
}

// headerModifier reads a header filter. Envoy refuses to set or remove
// pseudo-headers and Host this way (the Host is a rewrite's).
func (s *routeSource) headerModifier(field string, f gwv1.HTTPHeaderFilter) HeaderModifier {
	var hm HeaderModifier
	check := func(f, name string) string {
		n := strings.ToLower(name)
		if !headerName.MatchString(n) || n == "host" {
			s.unsupportedf(f, "%q is not a header a route may change", name)
		}
		return n
	}
	for i, h := range f.Set {
		hm.Set = append(hm.Set, Header{check(fmt.Sprintf("%s.set[%d].name", field, i), string(h.Name)), h.Value})
	}
	for i, h := range f.Add {
		hm.Add = append(hm.Add, Header{check(fmt.Sprintf("%s.add[%d].name", field, i), string(h.Name)), h.Value})
	}
	for i, h := range f.Remove {
		hm.Remove = append(hm.Remove, check(fmt.Sprintf("%s.remove[%d]", field, i), h))
	}
	return hm
}

func (s *routeSource) mirror(field string, f gwv1.HTTPRequestMirrorFilter) sourceMirror {
	m := sourceMirror{field: field + ".backendRef", ref: f.BackendRef, numerator: 100, denominator: 100}
	switch {
	case f.Percent != nil:
		m.numerator = uint32(min(max(*f.Percent, 0), 100))
	case f.Fraction != nil:
		den := ptrOr(f.Fraction.Denominator, 100)
		if den <= 0 || f.Fraction.Numerator < 0 || f.Fraction.Numerator > den {
			s.unsupportedf(field+".fraction", "%d/%d is not a fraction of requests", f.Fraction.Numerator, den)
			break
		}
		m.numerator, m.denominator = uint32(f.Fraction.Numerator), uint32(den)
	}
	return m
}

// defaultRetryAttempts are the retries of a retry stanza that names none.
const defaultRetryAttempts = 2

func (s *routeSource) retry(field string, r *gwv1.HTTPRouteRetry) *Retry {
	rt := &Retry{Attempts: ptrOr(r.Attempts, defaultRetryAttempts), Backoff: s.duration(field+".backoff", r.Backoff)}
	if rt.Attempts < 1 {
		s.unsupportedf(field+".attempts", "must be at least 1")
	}
	for i, c := range r.Codes {
		if c < 400 || c > 599 {
			s.unsupportedf(fmt.Sprintf("%s.codes[%d]", field, i), "%d is not a 4xx or 5xx status", c)
			continue
		}
		rt.Codes = append(rt.Codes, int(c))
	}
	return rt
}

// duration reads a Gateway API duration (GEP-2257); nil is zero.
func (s *routeSource) duration(field string, d *gwv1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil || v < 0 {
		s.unsupportedf(field, "%q is not a duration", *d)
		return 0
	}
	return v
}

func ptrOr[T any](p *T, def ...T) T {
	if p != nil {
		return *p
	}
	var zero T
	if len(def) > 0 {
		return def[0]
	}
	return zero
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
