package plan

import (
	"fmt"
	"io"
	"strings"
)

// maxGroupsNamed bounds the groups a change names; the others are counted.
const maxGroupsNamed = 5

// Write prints the plans for a reader: per mesh, a summary line, then
// each change with the groups it touches and its diff, then the problems.
func Write(w io.Writer, plans []MeshPlan) error {
	var b strings.Builder
	for _, p := range plans {
		if p.Empty() {
			fmt.Fprintf(&b, "mesh %s: no change (%d proxy groups)\n", p.Mesh, p.Groups)
			continue
		}
		fmt.Fprintf(&b, "mesh %s: %d of %d proxy groups would change\n", p.Mesh, p.Changed, p.Groups)
		for _, g := range p.AddedGroups {
			fmt.Fprintf(&b, "  + proxy group %s (new)\n", g)
		}
		for _, g := range p.RemovedGroups {
			fmt.Fprintf(&b, "  - proxy group %s (gone)\n", g)
		}
		for _, c := range p.Changes {
			sign := map[Op]string{Added: "+", Removed: "-", Changed: "~"}[c.Op]
			fmt.Fprintf(&b, "  %s %s %s %s, in %s\n", sign, c.Type, c.Name, c.Op, groupList(c.Groups))
			for _, l := range c.Diff {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
		for _, pr := range p.NewProblems {
			fmt.Fprintf(&b, "  ! new problem: %s\n", pr)
		}
		for _, pr := range p.GoneProblems {
			fmt.Fprintf(&b, "  ✓ problem gone: %s\n", pr)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func groupList(groups []string) string {
	s := strings.Join(groups[:min(len(groups), maxGroupsNamed)], ", ")
	if n := len(groups) - maxGroupsNamed; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	if len(groups) == 1 {
		return "group " + s
	}
	return fmt.Sprintf("%d groups: %s", len(groups), s)
}
