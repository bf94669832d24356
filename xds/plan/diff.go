package plan

import (
	"fmt"
	"strings"
)

// lineDiff is a unified diff of the lines of a and b, with context lines
// of context around each change, cut after limit lines.
func lineDiff(a, b string, context, limit int) []string {
	x, y := strings.Split(strings.TrimSuffix(a, "\n"), "\n"), strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	// The longest common subsequence, by dynamic programming: resources
	// are a few hundred lines.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var all []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			all = append(all, " "+x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			all = append(all, "+"+y[j])
			j++
		default:
			all = append(all, "-"+x[i])
			i++
		}
	}
	// Keep the changed lines and their context; "..." marks what is left out.
	keep := make([]bool, len(all))
	for k, l := range all {
		if l[0] != ' ' {
			for c := max(0, k-context); c <= min(len(all)-1, k+context); c++ {
				keep[c] = true
			}
		}
	}
	var out []string
	skipped := false
	for k, l := range all {
		if !keep[k] {
			skipped = true
			continue
		}
		if skipped && len(out) > 0 {
			out = append(out, " ...")
		}
		skipped = false
		out = append(out, l)
	}
	if len(out) > limit {
		n := len(out) - limit
		out = append(out[:limit], fmt.Sprintf(" ... (%d more lines)", n))
	}
	return out
}
