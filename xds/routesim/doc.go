// Package routesim says what Envoy does with one HTTP request under a route
// configuration, in pure Go and without Envoy: the virtual host and route it
// picks, and what the route does with the request: forward it to a cluster
// or to weighted clusters (with the path, host and headers each cluster
// receives, the response headers it adds, the mirrors, the timeout and the
// retry policy), redirect it (with the Location Envoy builds) or answer it
// directly.
//
// Each function follows the part of Envoy's source it names, mostly
// source/common/router/config_impl.cc (route and virtual host matching, path
// and host rewrites), source/common/router/header_parser.cc (header
// mutations), source/common/router/weighted_cluster_specifier.cc (weighted
// clusters), source/common/http/header_utility.cc (header matchers),
// source/common/router/config_utility.cc (query parameter matchers) and
// source/common/http/utility.cc (redirect locations, query strings). Chain
// follows source/common/listener_manager/filter_chain_manager_impl.cc, to
// find the connection manager a connection reaches.
//
// It simulates the route configuration only: what the HTTP connection
// manager and the router filter do to every request (x-request-id,
// x-forwarded-for, path normalization, x-envoy-* headers other than
// x-envoy-original-path) is not simulated. What routesim cannot evaluate
// (substitution format commands such as %REQ(...)%, runtime fractions,
// cluster specifier plugins, matcher trees, TLS context and metadata
// matches) is said in Result.Warnings rather than guessed.
package routesim
