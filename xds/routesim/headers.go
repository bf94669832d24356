package routesim

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Header is one header field.
type Header struct{ Name, Value string }

// Headers is a list of header fields in order; a name may repeat. Names are
// compared in lower case, as Envoy's header maps keep them
// (Http::LowerCaseString); the lists routesim returns hold lower-case names.
type Headers []Header

// HeaderMap is the list of the headers of m, by lower-case name.
func HeaderMap(m map[string]string) Headers {
	var out Headers
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, Header{strings.ToLower(k), m[k]})
	}
	slices.SortStableFunc(out, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// H is the list of name, value pairs.
func H(nameValues ...string) Headers {
	var out Headers
	for i := 0; i+1 < len(nameValues); i += 2 {
		out = append(out, Header{strings.ToLower(nameValues[i]), nameValues[i+1]})
	}
	return out
}

// Values are the values of the header name, in order.
func (h Headers) Values(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for _, f := range h {
		if strings.ToLower(f.Name) == name {
			out = append(out, f.Value)
		}
	}
	return out
}

// Get is the value of the header name, its values joined with "," when it
// repeats, as Envoy's header matchers read it
// (HeaderUtility::getAllOfHeaderAsString in source/common/http/header_utility.cc)
// and as an HTTP server folds it; ok is false when the request has none.
func (h Headers) Get(name string) (value string, ok bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ","), true
}

// Has says whether the header name is present.
func (h Headers) Has(name string) bool { return len(h.Values(name)) > 0 }

// clone copies h with lower-case names, as Http::LowerCaseString keys them.
func (h Headers) clone() Headers {
	out := make(Headers, 0, len(h))
	for _, f := range h {
		out = append(out, Header{strings.ToLower(f.Name), f.Value})
	}
	return out
}

// remove drops every field of name (HeaderMap::remove).
func (h Headers) remove(name string) Headers {
	name = strings.ToLower(name)
	return slices.DeleteFunc(h, func(f Header) bool { return strings.ToLower(f.Name) == name })
}

// set replaces every field of name by one (HeaderMapImpl::setReferenceKey:
// remove, then add).
func (h Headers) set(name, value string) Headers {
	return append(h.remove(name), Header{strings.ToLower(name), value})
}

// add appends a field (HeaderMapImpl::addReferenceKey): the name may repeat.
func (h Headers) add(name, value string) Headers {
	return append(h, Header{strings.ToLower(name), value})
}

// HeaderOption is one entry of a request_headers_to_add or
// response_headers_to_add list, its value formatted.
type HeaderOption struct {
	Name, Value string
	Action      corev3.HeaderValueOption_HeaderAppendAction
	// KeepEmpty adds the header even when its value is empty.
	KeepEmpty bool
}

// HeaderMutation is the header changes of one level of a route
// configuration (an Envoy HeaderParser): a weighted cluster's, a route's, a
// virtual host's or the route configuration's.
type HeaderMutation struct {
	// Level is "weighted_cluster", "route", "virtual_host" or
	// "route_configuration".
	Level  string
	Add    []HeaderOption
	Remove []string
}

// Empty says whether the mutation changes nothing.
func (m HeaderMutation) Empty() bool { return len(m.Add)+len(m.Remove) == 0 }

// Apply applies the mutation to a copy of h as HeaderParser::evaluateHeaders
// does (source/common/router/header_parser.cc): first it removes the
// headers to remove; then it evaluates every header to add against the
// headers as they are now (ADD_IF_ABSENT adds only a header that is absent,
// OVERWRITE_IF_EXISTS overwrites only one that is present, and an empty
// value is skipped unless keep_empty_value); then it overwrites, then adds.
func (m HeaderMutation) Apply(h Headers) Headers {
	out := h.clone()
	for _, n := range m.Remove {
		out = out.remove(n)
	}
	var toAdd, toSet []Header
	for _, o := range m.Add {
		if o.Value == "" && !o.KeepEmpty {
			continue
		}
		switch o.Action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			toAdd = append(toAdd, Header{o.Name, o.Value})
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !out.Has(o.Name) {
				toAdd = append(toAdd, Header{o.Name, o.Value})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if out.Has(o.Name) {
				toSet = append(toSet, Header{o.Name, o.Value})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			toSet = append(toSet, Header{o.Name, o.Value})
		}
	}
	for _, s := range toSet {
		out = out.set(s.Name, s.Value)
	}
	for _, a := range toAdd {
		out = out.add(a.Name, a.Value)
	}
	return out
}

// applyAll applies mutations in order.
// applyAll applies mutations in order, each a HeaderParser::evaluateHeaders
// (getHeaderParsers in source/common/router/config_impl.cc gives the order).
func applyAll(h Headers, ms []HeaderMutation) Headers {
	out := h.clone()
	for _, m := range ms {
		out = m.Apply(out)
	}
	return out
}

// headerMutation reads a level's headers to add and remove as
// HeaderParser::configure and HeadersToAddEntry do
// (source/common/router/header_parser.cc): the deprecated append, when set,
// picks APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD (setting both
// is refused); the value is a substitution format string, of which routesim
// evaluates only the literal text and its %% escapes (see formatValue);
// pseudo-headers and Host may be neither added nor removed (Envoy refuses
// the configuration: said in warnings).
func headerMutation(level string, add []*corev3.HeaderValueOption, remove []string, warn func(string, ...any)) HeaderMutation {
	m := HeaderMutation{Level: level}
	for _, o := range add {
		name := strings.ToLower(o.GetHeader().GetKey())
		if !modifiable(name) {
			warn("%s: Envoy refuses to add %q (a pseudo-header or host)", level, name)
			continue
		}
		action := o.GetAppendAction()
		if o.GetAppend() != nil {
			if action != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				warn("%s: header %q sets both append and append_action, which Envoy refuses", level, name)
			}
			action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if o.GetAppend().GetValue() {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
		}
		raw := o.GetHeader().GetValue()
		if raw == "" && len(o.GetHeader().GetRawValue()) > 0 {
			raw = string(o.GetHeader().GetRawValue())
		}
		value, err := formatValue(raw)
		if err != nil {
			warn("%s: header %q: %v", level, name, err)
		}
		m.Add = append(m.Add, HeaderOption{Name: name, Value: value, Action: action, KeepEmpty: o.GetKeepEmptyValue()})
	}
	for _, r := range remove {
		name := strings.ToLower(r)
		if !modifiable(name) {
			warn("%s: Envoy refuses to remove %q (a pseudo-header or host)", level, name)
			continue
		}
		m.Remove = append(m.Remove, name)
	}
	return m
}

// modifiable is Http::HeaderUtility::isModifiableHeader: not a pseudo-header,
// not Host.
func modifiable(name string) bool {
	return name != "" && name[0] != ':' && name != "host"
}

// formatValue is the value of a header whose configured value is a
// substitution format string (Formatter::FormatterImpl, as
// source/common/router/header_parser.cc builds it): "%%" is a literal "%";
// a command such as %REQ(x-foo)% is not evaluated here: it is left as
// written and reported.
func formatValue(format string) (string, error) {
	var b strings.Builder
	var err error
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		end := strings.IndexByte(format[i+1:], '%')
		if end < 0 {
			err = fmt.Errorf("an unescaped %% in %q, which Envoy refuses", format)
			b.WriteString(format[i:])
			break
		}
		cmd := format[i : i+end+2]
		if err == nil {
			err = fmt.Errorf("substitution command %s is not evaluated by routesim", cmd)
		}
		b.WriteString(cmd)
		i += end + 1
	}
	return b.String(), err
}
