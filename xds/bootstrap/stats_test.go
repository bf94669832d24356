package bootstrap

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tagExtractor is one of Envoy's tag extractors, as tag_producer_impl.cc
// and tag_extractor_impl.cc apply them: a regex searched in the whole stat
// name, whose first group is cut from the name and whose second is the
// value; prefix is the literal first token Envoy reads off the regex (or
// the tokens pattern), which sorts it after the extractors without one.
type tagExtractor struct {
	name, prefix string
	re           *regexp.Regexp
}

// producer ports Envoy's TagProducerImpl::produceTags for the extractors
// that concern identity labels: the defaults of the names the bootstrap
// overrides (source/common/config/well_known_names.cc, their tokens
// patterns "cluster.$.**", "http.$.**", "tcp.$.**" written as the regexes
// they amount to), then the bootstrap's, added after them.
func producer() []tagExtractor {
	defaults := []tagExtractor{
		{"envoy.cluster_name", "cluster", regexp.MustCompile(`^cluster\.(([^.]+)\.)`)},
		{"envoy.http_conn_manager_prefix", "listener", regexp.MustCompile(`^listener\..*?\.http\.(([^.]+)\.)`)},
		{"envoy.http_conn_manager_prefix", "http", regexp.MustCompile(`^http\.(([^.]+)\.)`)},
		{"envoy.tcp_prefix", "tcp", regexp.MustCompile(`^tcp\.(([^.]+)\.)`)},
		{"envoy.listener_address", "listener", regexp.MustCompile(`^listener\.(([^.]+)\.)`)},
	}
	out := defaults
	for _, t := range StatsConfig().GetStatsTags() {
		prefix := ""
		if m := regexp.MustCompile(`^\^([A-Za-z0-9_]+)\\\.`).FindStringSubmatch(t.GetRegex()); m != nil {
			prefix = m[1]
		}
		out = append(out, tagExtractor{t.GetTagName(), prefix, regexp.MustCompile(t.GetRegex())})
	}
	return out
}

// produce is the tag-extracted name and the tags of stat.
func produce(stat string) (string, map[string]string) {
	all := producer()
	// Without a prefix first, in order; then those of the name's first token.
	var order []tagExtractor
	for _, e := range all {
		if e.prefix == "" {
			order = append(order, e)
		}
	}
	first, _, _ := strings.Cut(stat, ".")
	for _, e := range all {
		if e.prefix != "" && e.prefix == first {
			order = append(order, e)
		}
	}
	tags := map[string]string{}
	cut := make([]bool, len(stat))
	for _, e := range order {
		if _, done := tags[e.name]; done {
			continue // another extractor of the name extracted
		}
		m := e.re.FindStringSubmatchIndex(stat)
		if m == nil || len(m) < 6 {
			continue
		}
		tags[e.name] = stat[m[4]:m[5]]
		for i := m[2]; i < m[3]; i++ {
			cut[i] = true
		}
	}
	var b strings.Builder
	for i := range stat {
		if !cut[i] {
			b.WriteByte(stat[i])
		}
	}
	return b.String(), tags
}

// The bootstrap's extractors make labels of the identities in stat names
// and leave the names Envoy's defaults make: the same metric name with and
// without identity labels, the usual prefix or cluster name as its label,
// and the identity as osm_source or osm_destination.
func TestIdentityTagsLeaveMetricNames(t *testing.T) {
	for _, c := range []struct {
		stat, name string
		tags       map[string]string
	}{
		{"cluster.out|shop/books|80~dst=shop/books+shop/books-v2.upstream_rq_total", "cluster.upstream_rq_total",
			map[string]string{"envoy.cluster_name": "out|shop/books|80", DestinationTag: "shop/books+shop/books-v2"}},
		{"cluster.out|shop/books|80.upstream_rq_total", "cluster.upstream_rq_total",
			map[string]string{"envoy.cluster_name": "out|shop/books|80"}},
		{"cluster.in|8080~dst=shop/books.upstream_cx_active", "cluster.upstream_cx_active",
			map[string]string{"envoy.cluster_name": "in|8080", DestinationTag: "shop/books"}},
		{"http.in|8080~dst=shop/books.downstream_rq_total", "http.downstream_rq_total",
			map[string]string{"envoy.http_conn_manager_prefix": "in|8080", DestinationTag: "shop/books"}},
		// The RBAC filter keeps the unlabelled prefix as its rules_stat_prefix.
		{"http.in|8080~dst=shop/books.rbac.in|8080.allowed", "http.rbac.in|8080.allowed",
			map[string]string{"envoy.http_conn_manager_prefix": "in|8080", DestinationTag: "shop/books"}},
		{"http.out|shop/books|80.downstream_rq_total", "http.downstream_rq_total",
			map[string]string{"envoy.http_conn_manager_prefix": "out|shop/books|80"}},
		{"tcp.in|5432~dst=shop/db.downstream_cx_total", "tcp.downstream_cx_total",
			map[string]string{"envoy.tcp_prefix": "in|5432", DestinationTag: "shop/db"}},
		{"listener.outbound~src=shop/buyer.downstream_cx_total", "listener.downstream_cx_total",
			map[string]string{"envoy.listener_address": "outbound", SourceTag: "shop/buyer"}},
		{"listener.outbound~src=shop/buyer.http.out|shop/books|80.downstream_rq_completed", "listener.http.downstream_rq_completed",
			map[string]string{"envoy.listener_address": "outbound", "envoy.http_conn_manager_prefix": "out|shop/books|80", SourceTag: "shop/buyer"}},
		{"listener.inbound~dst=shop/books.http.in|8080~dst=shop/books.downstream_rq_completed", "listener.http.downstream_rq_completed",
			map[string]string{"envoy.listener_address": "inbound", "envoy.http_conn_manager_prefix": "in|8080", DestinationTag: "shop/books"}},
	} {
		name, tags := produce(c.stat)
		if name != c.name {
			t.Errorf("%s: tag-extracted name %q, want %q", c.stat, name, c.name)
		}
		if !maps.Equal(tags, c.tags) {
			t.Errorf("%s: tags %v, want %v", c.stat, tags, c.tags)
		}
	}
	// Every regex runs before the defaults of its name: Envoy sees no
	// literal prefix in it.
	for _, tg := range StatsConfig().GetStatsTags() {
		if regexp.MustCompile(`^\^[A-Za-z0-9_]+\\\.`).MatchString(tg.GetRegex()) {
			t.Errorf("%s: regex %q has a literal prefix: Envoy would run it after its default extractors", tg.GetTagName(), tg.GetRegex())
		}
	}
	var names []string
	for _, tg := range StatsConfig().GetStatsTags() {
		names = append(names, tg.GetTagName())
	}
	if !slices.Contains(names, SourceTag) || !slices.Contains(names, DestinationTag) {
		t.Errorf("the extractors %v make no %s or %s", names, SourceTag, DestinationTag)
	}
}
