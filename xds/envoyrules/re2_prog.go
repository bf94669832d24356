package envoyrules

import (
	"sort"
)

// Prog::Optimize and Prog::Flatten (re2/prog.cc).

// re2Queue is RE2's SparseSet used as a work queue: insertion order, no
// duplicates.
type re2Queue struct {
	ids  []int
	seen []bool
}

func newRE2Queue(n int) *re2Queue { return &re2Queue{seen: make([]bool, n)} }

func (q *re2Queue) add(id int) {
	if !q.seen[id] {
		q.seen[id] = true
		q.ids = append(q.ids, id)
	}
}

func (q *re2Queue) clear() {
	for _, id := range q.ids {
		q.seen[id] = false
	}
	q.ids = q.ids[:0]
}

func re2Optimize(prog []re2Inst, start uint32) {
	q := newRE2Queue(len(prog))
	addq := func(id uint32) {
		if id != 0 {
			q.add(int(id))
		}
	}
	skipNops := func(j uint32) uint32 {
		for j != 0 && prog[j].op == re2InstNop {
			j = prog[j].out
		}
		return j
	}
	addq(start)
	for i := 0; i < len(q.ids); i++ {
		ip := &prog[q.ids[i]]
		ip.out = skipNops(ip.out)
		addq(ip.out)
		if ip.op == re2InstAlt {
			ip.out1 = skipNops(ip.out1)
			addq(ip.out1)
		}
	}

	isMatch := func(id uint32) bool {
		for {
			switch prog[id].op {
			case re2InstCapture, re2InstNop:
				id = prog[id].out
			case re2InstMatch:
				return true
			default:
				return false
			}
		}
	}
	anyByteTo := func(j *re2Inst, id int) bool {
		return j.op == re2InstByteRange && int(j.out) == id && j.lo == 0x00 && j.hi == 0xFF
	}
	q.clear()
	addq(start)
	for i := 0; i < len(q.ids); i++ {
		id := q.ids[i]
		ip := &prog[id]
		addq(ip.out)
		if ip.op == re2InstAlt {
			addq(ip.out1)
			if anyByteTo(&prog[ip.out], id) && isMatch(ip.out1) ||
				isMatch(ip.out) && anyByteTo(&prog[ip.out1], id) {
				ip.op = re2InstAltMatch
			}
		}
	}
}

// re2FlattenSize returns the number of instructions Prog::Flatten emits.
func re2FlattenSize(prog []re2Inst, start, startUnanchored int) int {
	n := len(prog)
	rootIndex := make([]int, n)
	for i := range rootIndex {
		rootIndex[i] = -1
	}
	var roots []int
	isRoot := func(id int) bool { return rootIndex[id] >= 0 }
	addRoot := func(id int) {
		if !isRoot(id) {
			rootIndex[id] = len(roots)
			roots = append(roots, id)
		}
	}
	preds := make([][]int, n)
	reachable := newRE2Queue(n)
	var stk []int

	// MarkSuccessors.
	addRoot(0)
	addRoot(startUnanchored)
	addRoot(start)
	stk = append(stk, startUnanchored)
	for len(stk) > 0 {
		id := stk[len(stk)-1]
		stk = stk[:len(stk)-1]
		for !reachable.seen[id] {
			reachable.add(id)
			ip := &prog[id]
			next := -1
			switch ip.op {
			case re2InstAlt, re2InstAltMatch:
				preds[ip.out] = append(preds[ip.out], id)
				preds[ip.out1] = append(preds[ip.out1], id)
				stk = append(stk, int(ip.out1))
				next = int(ip.out)
			case re2InstByteRange, re2InstCapture, re2InstEmptyWidth:
				addRoot(int(ip.out))
				next = int(ip.out)
			case re2InstNop:
				next = int(ip.out)
			}
			if next < 0 {
				break
			}
			id = next
		}
	}

	// MarkDominator, from the greatest successor root down.
	sorted := append([]int(nil), roots...)
	sort.Ints(sorted)
	for k := len(sorted) - 1; k > 0; k-- {
		root := sorted[k]
		if root == startUnanchored || root == start {
			continue
		}
		reachable.clear()
		stk = append(stk[:0], root)
		for len(stk) > 0 {
			id := stk[len(stk)-1]
			stk = stk[:len(stk)-1]
			for !reachable.seen[id] {
				reachable.add(id)
				if id != root && isRoot(id) {
					break
				}
				ip := &prog[id]
				next := -1
				switch ip.op {
				case re2InstAlt, re2InstAltMatch:
					stk = append(stk, int(ip.out1))
					next = int(ip.out)
				case re2InstNop:
					next = int(ip.out)
				}
				if next < 0 {
					break
				}
				id = next
			}
		}
		for _, id := range reachable.ids {
			for _, pred := range preds[id] {
				if !reachable.seen[pred] {
					addRoot(id)
				}
			}
		}
	}

	// EmitList, counting.
	size := 0
	for _, root := range roots {
		reachable.clear()
		stk = append(stk[:0], root)
		for len(stk) > 0 {
			id := stk[len(stk)-1]
			stk = stk[:len(stk)-1]
			for !reachable.seen[id] {
				reachable.add(id)
				if id != root && isRoot(id) {
					size++ // Nop to the other list
					break
				}
				ip := &prog[id]
				next := -1
				switch ip.op {
				case re2InstAltMatch:
					size++
					fallthrough
				case re2InstAlt:
					stk = append(stk, int(ip.out1))
					next = int(ip.out)
				case re2InstByteRange, re2InstCapture, re2InstEmptyWidth, re2InstMatch, re2InstFail:
					size++
				case re2InstNop:
					next = int(ip.out)
				}
				if next < 0 {
					break
				}
				id = next
			}
		}
	}
	return size
}
