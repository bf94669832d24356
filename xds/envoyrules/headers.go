package envoyrules

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

const (
	headerParserSource = "source/common/router/header_parser.cc"
	formatterSource    = "source/common/formatter/substitution_formatter.cc, SubstitutionFormatParser::parse"
	baseProto          = "api/envoy/config/core/v3/base.proto"
	routeProto         = "api/envoy/config/route/v3/route_components.proto"
)

// headerMutator is a level that adds and removes headers: a route
// configuration, a virtual host, a route, a weighted cluster.
type headerMutator interface {
	GetRequestHeadersToAdd() []*corev3.HeaderValueOption
	GetRequestHeadersToRemove() []string
	GetResponseHeadersToAdd() []*corev3.HeaderValueOption
	GetResponseHeadersToRemove() []string
}

// maxHeaderBytes is the longest header key or value proto validation lets
// through (HeaderValue.key and .value, max_bytes).
const maxHeaderBytes = 16384

// headerMutations checks the header lists of a level of route configuration
// rn, where says which: Envoy builds a HeaderParser of each
// (HeaderParser::configure), which refuses what it may not touch and parses
// every value as a format string. removeMinLen says whether proto
// validation refuses an empty name to remove at this level (a virtual
// host's and a route's lists; a route configuration's and a weighted
// cluster's have no such rule).
func headerMutations(rn, where string, m headerMutator, removeMinLen bool, f *facts) {
	for _, l := range []struct {
		dir    string
		add    []*corev3.HeaderValueOption
		remove []string
	}{
		{"request", m.GetRequestHeadersToAdd(), m.GetRequestHeadersToRemove()},
		{"response", m.GetResponseHeadersToAdd(), m.GetResponseHeadersToRemove()},
	} {
		if len(l.add) > 1000 {
			f.fail("route", rn, fmt.Sprintf("%s: %s headers to add are at most 1000", where, l.dir),
				"proto validation ("+routeProto+"): \"value must contain no more than 1000 item(s)\"")
		}
		for _, o := range l.add {
			headerToAdd(rn, where, l.dir, o, f)
		}
		for _, h := range l.remove {
			headerToRemove(rn, where, l.dir, h, removeMinLen, f)
		}
	}
}

// headerToAdd checks one header of a list to add.
func headerToAdd(rn, where, dir string, o *corev3.HeaderValueOption, f *facts) {
	hv := o.GetHeader()
	if hv == nil {
		f.fail("route", rn, fmt.Sprintf("%s: every %s header to add has a header", where, dir),
			"proto validation ("+baseProto+"): HeaderValueOption.header \"value is required\"")
		return
	}
	key, value := hv.GetKey(), hv.GetValue()
	if utf8.RuneCountInString(key) < 1 || len(key) > maxHeaderBytes || strings.ContainsAny(key, "\x00\r\n") {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to add has a name of 1 to %d bytes without NUL, CR or LF", where, dir, key, maxHeaderBytes),
			"proto validation ("+baseProto+"): HeaderValue.key is min_len 1, max_bytes 16384 and matches \"^[^\\0\\n\\r]*$\"")
	}
	if len(value) > maxHeaderBytes || strings.ContainsAny(value, "\x00\r\n") {
		f.fail("route", rn, fmt.Sprintf("%s: the value of the %s header %q to add is at most %d bytes without NUL, CR or LF", where, dir, key, maxHeaderBytes),
			"proto validation ("+baseProto+"): HeaderValue.value is max_bytes 16384 and matches \"^[^\\0\\n\\r]*$\"")
	}
	if !modifiable(key) {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to add is neither a pseudo-header (:name) nor host", where, dir, key),
			"\":-prefixed or host headers may not be modified\" ("+headerParserSource+", Http::HeaderUtility::isModifiableHeader in source/common/http/header_utility.cc); host_rewrite_literal and the path rewrites change them")
	}
	if o.GetAppend() != nil && o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to add sets the deprecated append or a non-default append_action, not both", where, dir, key),
			"\"Both append and append_action are set and it's not allowed\" ("+headerParserSource+", HeadersToAddEntry)")
	}
	if _, ok := corev3.HeaderValueOption_HeaderAppendAction_name[int32(o.GetAppendAction())]; !ok {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to add has an append_action Envoy defines", where, dir, key),
			"proto validation ("+baseProto+"): HeaderValueOption.append_action \"value must be one of the defined enum values\"")
	}
	if pos, ok := formatString(value); !ok {
		f.fail("route", rn, fmt.Sprintf("%s: the value of the %s header %q to add is a format string: each %% in it is part of %%%% or of a command %%NAME%%, %%NAME(ARG)%% or %%NAME(ARG):LENGTH%%", where, dir, key),
			fmt.Sprintf("\"Incorrect configuration: %s. Couldn't find valid command at position %d\" (%s; a header value is parsed by Formatter::FormatterImpl::create in %s). Only the syntax is checked here: Envoy also refuses a command it does not know, with \"Not supported field in StreamInfo: NAME\"", value, pos, formatterSource, headerParserSource))
	}
}

// headerToRemove checks one header of a list to remove.
func headerToRemove(rn, where, dir, h string, minLen bool, f *facts) {
	if minLen && utf8.RuneCountInString(h) < 1 {
		f.fail("route", rn, fmt.Sprintf("%s: every %s header to remove is named", where, dir),
			"proto validation ("+routeProto+"): headers to remove are min_len 1")
	}
	if strings.ContainsAny(h, "\x00\r\n") {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to remove has no NUL, CR or LF", where, dir, h),
			"proto validation ("+routeProto+"): headers to remove match \"^[^\\0\\n\\r]*$\"")
	}
	if !modifiable(h) {
		f.fail("route", rn, fmt.Sprintf("%s: the %s header %q to remove is neither a pseudo-header (:name) nor host", where, dir, h),
			"\":-prefixed or host headers may not be removed\" ("+headerParserSource+", Http::HeaderUtility::isRemovableHeader in source/common/http/header_utility.cc)")
	}
}

// modifiable ports Http::HeaderUtility::isModifiableHeader, which
// isRemovableHeader equals: no pseudo-header, no host in any case.
func modifiable(h string) bool {
	return (h == "" || h[0] != ':') && !strings.EqualFold(h, "host")
}

// formatCommand is Envoy's commandWithArgsRegex
// (source/common/formatter/substitution_formatter.cc), which RE2::Consume
// anchors where a command starts: %COMMAND%, %COMMAND(SUBCOMMAND)%, each
// optionally with :LENGTH before the closing %.
var formatCommand = regexp.MustCompile(`^%((?:[A-Z]|[0-9]|_)+)(?:\((.*?)\))?(?::([0-9]+))?%`)

// formatString says whether Envoy's substitution format parser takes s,
// and if not where it stops: every % is either %% (a literal %) or starts
// a command. The names of the commands are not checked.
func formatString(s string) (int, bool) {
	for pos := 0; pos < len(s); {
		switch {
		case s[pos] != '%':
			pos++
		case pos+1 < len(s) && s[pos+1] == '%':
			pos += 2
		default:
			m := formatCommand.FindStringIndex(s[pos:])
			if m == nil {
				return pos, false
			}
			pos += m[1]
		}
	}
	return 0, true
}
