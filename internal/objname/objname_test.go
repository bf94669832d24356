package objname

import (
	"strings"
	"testing"
)

// A cut name is at most max long, ends its start on a letter or digit, and
// names its key: the same start with another key is another name. (The
// hashes are sha256sum's.)
func TestCut(t *testing.T) {
	for _, c := range []struct {
		name, key string
		max, hash int
		want      string
	}{
		{"abcdef", "abcdef", 10, 3, "abcdef-bef"},
		{strings.Repeat("a", 20), "k", 10, 3, "aaaaaa-825"},
		{"aaaa.-bbbb", "k", 10, 3, "aaaa-825"},
		{"aaaaaa", "other", 10, 3, "aaaaaa-d92"},
	} {
		got := Cut(c.name, c.key, c.max, c.hash)
		if got != c.want {
			t.Errorf("Cut(%q, %q, %d, %d) = %q, want %q", c.name, c.key, c.max, c.hash, got, c.want)
		}
		if len(got) > c.max {
			t.Errorf("Cut(%q, …) = %q is longer than %d", c.name, got, c.max)
		}
	}
}
