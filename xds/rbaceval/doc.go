// Package rbaceval says whether Envoy's RBAC filters allow a connection or
// an HTTP request, and by which policy, evaluating the RBAC rules
// (envoy.config.rbac.v3.RBAC) that the translator really sends, in pure Go
// and without Envoy.
//
// It follows Envoy's source, which each function names:
// source/extensions/filters/common/rbac/engine_impl.cc (policies are tried
// in the lexicographic order of their names, the first that matches is the
// effective policy; ALLOW allows on a match, DENY on none, LOG always),
// source/extensions/filters/common/rbac/matchers.cc and matchers.h (every
// permission and principal), source/extensions/filters/common/rbac/utility.h
// (a filter without rules has no engine and allows everything),
// source/extensions/filters/http/rbac/rbac_filter.cc and
// source/extensions/filters/network/rbac/rbac_filter.cc (what each filter
// matches against, and what a denial does), source/common/common/matchers.h
// (string and path matchers), source/common/http/header_utility.cc (header
// matchers, through routesim) and source/common/network/cidr_range.cc
// (address ranges).
//
// What it does not evaluate it refuses with an error naming the field:
// metadata, filter state, custom and URI template matchers, CEL
// conditions, matcher trees (the filters' matcher field), per-route RBAC
// overrides and filter configurations it cannot see (ECDS, RDS). It never
// guesses a verdict.
//
// A proxyless gRPC server runs gRPC's own RBAC engine (gRFC A41; grpc-go's
// internal/xds/rbac) on the same rules, which departs from Envoy in places:
// it reports any matching policy (it keeps them in a Go map), always sees
// :method POST, matches url_path against the method name and
// requested_server_name against "", and matches an authenticated principal
// against the first non-empty of the URI SANs, the DNS SANs and the subject
// only. rbaceval gives Envoy's verdict; for the rules the translator sends
// a gRPC server (SPIFFE IDs of mesh certificates, source addresses, paths
// and :method POST) the verdicts agree.
package rbaceval
