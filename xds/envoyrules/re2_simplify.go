package envoyrules

// Simplification (re2/simplify.cc).

type re2Walk struct {
	st      *re2State
	budget  int
	stopped bool
}

// walkChildren visits re's children with RE2's Walker rule that a child
// equal (as a pointer) to the one before it is copied, not walked again.
func (w *re2Walk) walkChildren(re *re2Node, visit func(*re2Node) *re2Node) []*re2Node {
	child := make([]*re2Node, len(re.sub))
	for i, s := range re.sub {
		if i > 0 && s == re.sub[i-1] {
			child[i] = child[i-1]
			continue
		}
		child[i] = visit(s)
	}
	return child
}

func re2ChildrenChanged(re *re2Node, child []*re2Node) bool {
	for i := range re.sub {
		if re.sub[i] != child[i] {
			return true
		}
	}
	return false
}

// coalesce is CoalesceWalker.
func (w *re2Walk) coalesce(re *re2Node) *re2Node {
	if w.budget--; w.budget < 0 {
		w.stopped = true
		return re
	}
	if len(re.sub) == 0 {
		return re
	}
	child := w.walkChildren(re, w.coalesce)
	if re.op != re2OpConcat {
		if !re2ChildrenChanged(re, child) {
			return re
		}
		return &re2Node{op: re.op, flags: re.flags, sub: child, min: re.min, max: re.max, cap: re.cap}
	}
	can := false
	for i := 0; i+1 < len(child); i++ {
		if re2CanCoalesce(child[i], child[i+1]) {
			can = true
			break
		}
	}
	if !can {
		if !re2ChildrenChanged(re, child) {
			return re
		}
		return &re2Node{op: re.op, flags: re.flags, sub: child}
	}
	for i := 0; i+1 < len(child); i++ {
		if re2CanCoalesce(child[i], child[i+1]) {
			child[i], child[i+1] = re2DoCoalesce(child[i], child[i+1])
		}
	}
	nre := &re2Node{op: re.op, flags: re.flags}
	for _, c := range child {
		if c.op != re2OpEmptyMatch {
			nre.sub = append(nre.sub, c)
		}
	}
	return nre
}

func re2IsRepeatOp(op re2Op) bool {
	return op == re2OpStar || op == re2OpPlus || op == re2OpQuest || op == re2OpRepeat
}

func re2CanCoalesce(r1, r2 *re2Node) bool {
	if !re2IsRepeatOp(r1.op) {
		return false
	}
	s := r1.sub[0]
	if s.op != re2OpLiteral && s.op != re2OpCharClass && s.op != re2OpAnyChar && s.op != re2OpAnyByte {
		return false
	}
	if re2IsRepeatOp(r2.op) && re2Equal(s, r2.sub[0]) && (r1.flags&re2NonGreedy) == (r2.flags&re2NonGreedy) {
		return true
	}
	if re2Equal(s, r2) {
		return true
	}
	return s.op == re2OpLiteral && r2.op == re2OpLiteralString && r2.runes[0] == s.r &&
		(s.flags&re2FoldCase) == (r2.flags&re2FoldCase)
}

func re2DoCoalesce(r1, r2 *re2Node) (*re2Node, *re2Node) {
	nre := &re2Node{op: re2OpRepeat, flags: r1.flags, sub: []*re2Node{r1.sub[0]}}
	switch r1.op {
	case re2OpStar:
		nre.min, nre.max = 0, -1
	case re2OpPlus:
		nre.min, nre.max = 1, -1
	case re2OpQuest:
		nre.min, nre.max = 0, 1
	case re2OpRepeat:
		nre.min, nre.max = r1.min, r1.max
	}
	empty := &re2Node{op: re2OpEmptyMatch}
	switch r2.op {
	case re2OpStar:
		nre.max = -1
	case re2OpPlus:
		nre.min++
		nre.max = -1
	case re2OpQuest:
		if nre.max != -1 {
			nre.max++
		}
	case re2OpRepeat:
		nre.min += r2.min
		if r2.max == -1 {
			nre.max = -1
		} else if nre.max != -1 {
			nre.max += r2.max
		}
	case re2OpLiteral, re2OpCharClass, re2OpAnyChar, re2OpAnyByte:
		nre.min++
		if nre.max != -1 {
			nre.max++
		}
	case re2OpLiteralString:
		r := r1.sub[0].r
		n := 1
		for n < len(r2.runes) && r2.runes[n] == r {
			n++
		}
		nre.min += n
		if nre.max != -1 {
			nre.max += n
		}
		if n < len(r2.runes) {
			return nre, re2NewLiteralString(r2.runes[n:], r2.flags)
		}
	default:
		return r1, r2
	}
	return empty, nre
}

// simplify is SimplifyWalker.
func (w *re2Walk) simplify(re *re2Node) *re2Node {
	if w.budget--; w.budget < 0 {
		w.stopped = true
		return re
	}
	if re.simple {
		return re
	}
	child := w.walkChildren(re, w.simplify)
	switch re.op {
	case re2OpConcat, re2OpAlternate:
		if !re2ChildrenChanged(re, child) {
			re.simple = true
			return re
		}
		return &re2Node{op: re.op, flags: re.flags, sub: child, simple: true}
	case re2OpCapture:
		if child[0] == re.sub[0] {
			re.simple = true
			return re
		}
		return &re2Node{op: re2OpCapture, flags: re.flags, sub: child, cap: re.cap, simple: true}
	case re2OpStar, re2OpPlus, re2OpQuest:
		ns := child[0]
		if ns.op == re2OpEmptyMatch {
			return ns
		}
		if ns == re.sub[0] {
			re.simple = true
			return re
		}
		if re.op == ns.op && re.flags == ns.flags {
			return ns
		}
		return &re2Node{op: re.op, flags: re.flags, sub: child, simple: true}
	case re2OpRepeat:
		ns := child[0]
		if ns.op == re2OpEmptyMatch {
			return ns
		}
		nre := w.simplifyRepeat(ns, re.min, re.max, re.flags)
		nre.simple = true
		return nre
	case re2OpCharClass:
		var nre *re2Node
		switch re.cc.nrunes {
		case 0:
			nre = &re2Node{op: re2OpNoMatch, flags: re.flags}
		case re2Runemax + 1:
			nre = &re2Node{op: re2OpAnyChar, flags: re.flags}
		default:
			nre = re
		}
		nre.simple = true
		return nre
	}
	re.simple = true
	return re
}

func re2IsEmptyOp(re *re2Node) bool {
	switch re.op {
	case re2OpBeginLine, re2OpEndLine, re2OpWordBoundary, re2OpNoWordBoundary, re2OpBeginText, re2OpEndText:
		return true
	}
	return false
}

// simplifyRepeat is SimplifyWalker::SimplifyRepeat: x{n,m} in terms of
// concatenation, + and ?.
func (w *re2Walk) simplifyRepeat(re *re2Node, lo, hi int, f re2Flags) *re2Node {
	emptyOps := re2IsEmptyOp(re)
	if !emptyOps && (re.op == re2OpConcat || re.op == re2OpAlternate) {
		emptyOps = true
		for _, s := range re.sub {
			if !re2IsEmptyOp(s) {
				emptyOps = false
				break
			}
		}
	}
	if emptyOps && (lo > 1 || hi > 1) {
		w.st.divergent = true
		if w.st.sem.capEmptyRepeats {
			lo, hi = min(lo, 1), min(hi, 1)
		}
	}
	if hi == -1 {
		if lo == 0 {
			return re2StarPlusOrQuest(re2OpStar, re, f)
		}
		if lo == 1 {
			return re2StarPlusOrQuest(re2OpPlus, re, f)
		}
		subs := make([]*re2Node, lo)
		for i := 0; i < lo-1; i++ {
			subs[i] = re
		}
		subs[lo-1] = re2StarPlusOrQuest(re2OpPlus, re, f)
		return w.st.concat(subs, f)
	}
	if lo == 0 && hi == 0 {
		return &re2Node{op: re2OpEmptyMatch, flags: f}
	}
	if lo == 1 && hi == 1 {
		return re
	}
	var nre *re2Node
	if lo > 0 {
		subs := make([]*re2Node, lo)
		for i := range subs {
			subs[i] = re
		}
		nre = w.st.concat(subs, f)
	}
	if hi > lo {
		suf := re2StarPlusOrQuest(re2OpQuest, re, f)
		for i := lo + 1; i < hi; i++ {
			suf = re2StarPlusOrQuest(re2OpQuest, &re2Node{op: re2OpConcat, flags: f, sub: []*re2Node{re, suf}}, f)
		}
		if nre == nil {
			nre = suf
		} else {
			nre = &re2Node{op: re2OpConcat, flags: f, sub: []*re2Node{nre, suf}}
		}
	}
	if nre == nil {
		return &re2Node{op: re2OpNoMatch, flags: f}
	}
	return nre
}

// re2IsAnchorStart and re2IsAnchorEnd are the compiler's anchor removal.
func (st *re2State) isAnchor(pre **re2Node, depth int, start bool) bool {
	re := *pre
	if re == nil || depth >= 4 {
		return false
	}
	switch re.op {
	case re2OpConcat:
		if len(re.sub) > 0 {
			k := 0
			if !start {
				k = len(re.sub) - 1
			}
			sub := re.sub[k]
			if st.isAnchor(&sub, depth+1, start) {
				subs := append([]*re2Node(nil), re.sub...)
				subs[k] = sub
				*pre = st.concat(subs, re.flags)
				return true
			}
		}
	case re2OpCapture:
		sub := re.sub[0]
		if st.isAnchor(&sub, depth+1, start) {
			*pre = &re2Node{op: re2OpCapture, flags: re.flags, sub: []*re2Node{sub}, cap: re.cap}
			return true
		}
	case re2OpBeginText:
		if start {
			*pre = &re2Node{op: re2OpEmptyMatch, flags: re.flags}
			return true
		}
	case re2OpEndText:
		if !start {
			*pre = &re2Node{op: re2OpEmptyMatch, flags: re.flags}
			return true
		}
	}
	return false
}
