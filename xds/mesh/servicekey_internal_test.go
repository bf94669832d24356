package mesh

import (
	"strings"
	"testing"
)

// TestServiceKeysSortAsTheirNames: keys compare as "namespace/name" does,
// a namespace that is another's prefix included.
func TestServiceKeysSortAsTheirNames(t *testing.T) {
	keys := []ServiceKey{{"a", "x"}, {"a-b", "x"}, {"a", "y"}, {"ab", "a"}, {"a.b", "z"}, {"a", ""}, {"b", "a"}, {"a0", "q"}}
	for _, x := range keys {
		for _, y := range keys {
			if got, want := compareServiceKey(x, y), strings.Compare(x.String(), y.String()); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", x, y, got, want)
			}
		}
	}
}
