package routesim

import (
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// redirectConfig is Http::Utility::RedirectConfig as createRedirectConfig
// (source/common/router/config_impl.cc) builds it from a RedirectAction.
type redirectConfig struct {
	scheme, host, port, path string
	pathHasQuery             bool
	https, stripQuery        bool
}

// redirect is the Location of a redirect route: the router first rewrites
// the request's path (DirectResponseEntry::rewritePathHeader, with
// RouteEntryImplBase::getPathRewrite: the redirect's prefix_rewrite, or its
// regex_rewrite of the path without query, which keeps the query; only for
// what isRedirect() calls a redirect, one with a host, path, prefix or
// regex), then builds the Location from it (newURI).
func (a action) redirect(rd *routev3.RedirectAction, req Request) string {
	cfg := &redirectConfig{
		scheme:     rd.GetSchemeRedirect(),
		host:       rd.GetHostRedirect(),
		path:       rd.GetPathRedirect(),
		https:      rd.GetHttpsRedirect(),
		stripQuery: rd.GetStripQuery(),
	}
	if p := rd.GetPortRedirect(); p != 0 {
		cfg.port = ":" + strconv.Itoa(int(p))
	}
	cfg.pathHasQuery = strings.Contains(cfg.path, "?")
	if rd.GetPathRewrite() != "" {
		a.warn("a redirect's path_rewrite is not simulated by routesim")
	}
	isRedirect := cfg.host != "" || cfg.path != "" || rd.GetPrefixRewrite() != "" || rd.GetRegexRewrite() != nil
	if isRedirect {
		switch {
		case rd.GetRegexRewrite() != nil:
			just := removeQueryAndFragment(req.Path)
			p, err := replaceAll(rd.GetRegexRewrite(), just)
			if err != nil {
				a.warn("redirect regex_rewrite: %v", err)
			} else if p != "" {
				req.Path = p + req.Path[len(just):]
			}
		case rd.GetPrefixRewrite() != "" && len(a.matched) <= len(req.Path):
			req.Path = rd.GetPrefixRewrite() + req.Path[len(a.matched):]
		}
	}
	return newURI(cfg, req)
}

// newURI is Http::Utility::newUri (source/common/http/utility.cc): the
// scheme is scheme_redirect, else https with https_redirect, else the
// request's :scheme; the port is ":"+port_redirect, else none; the host is
// host_redirect, else the request's Host without its port when a
// port_redirect is set, or when the scheme changes and the port is the
// default of the request's x-forwarded-proto (":80" for http, ":443" for
// https); the path is path_redirect (keeping the request's query unless it
// has its own), else the request's path; a path gets a leading "/";
// strip_query drops the query, unless path_redirect has one. cfg nil is a
// direct response's Location: the request's own URI.
func newURI(cfg *redirectConfig, req Request) string {
	if cfg == nil {
		cfg = &redirectConfig{}
	}
	scheme := req.Scheme
	switch {
	case cfg.scheme != "":
		scheme = cfg.scheme
	case cfg.https:
		scheme = "https"
	}
	host := cfg.host
	if host == "" {
		host = processRequestHost(req, scheme, cfg.port)
	}
	path := req.Path
	if cfg.path != "" {
		path = cfg.path
		if !cfg.pathHasQuery {
			if i := strings.IndexByte(req.Path, '?'); i >= 0 {
				path += req.Path[i:]
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if !cfg.pathHasQuery && cfg.stripQuery {
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
	}
	return scheme + "://" + host + cfg.port + path
}

// processRequestHost is processRequestHost of source/common/http/utility.cc:
// the request's Host, without its port when a new port is given, or when
// the scheme changes and the port is the default one of the request's
// protocol (x-forwarded-proto).
func processRequestHost(req Request, newScheme, newPort string) string {
	host := req.Host
	if host == "" {
		return host
	}
	var end int
	if host[0] == '[' {
		end = strings.LastIndex(host, "]:")
		if end >= 0 {
			end++
		}
	} else {
		end = strings.LastIndexByte(host, ':')
	}
	if end < 0 {
		return host
	}
	port := host[end:]
	proto := req.ForwardedProto
	remove := newPort != ""
	if newScheme != proto {
		remove = remove || strings.EqualFold(proto, "https") && port == ":443"
		remove = remove || strings.EqualFold(proto, "http") && port == ":80"
	}
	if remove {
		return host[:end]
	}
	return host
}
