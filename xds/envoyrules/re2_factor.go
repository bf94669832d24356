package envoyrules

// Alternation factoring (FactorAlternation in re2/parse.cc).

type re2Splice struct {
	prefix *re2Node
	start  int
	n      int
}

func (st *re2State) factorAlternation(sub []*re2Node, flags re2Flags) []*re2Node {
	for round := 1; round <= 3; round++ {
		var splices []re2Splice
		switch round {
		case 1:
			splices = re2Round1(sub)
		case 2:
			splices = re2Round2(sub)
		case 3:
			splices = st.round3(sub, flags)
		}
		if len(splices) == 0 {
			continue
		}
		var out []*re2Node
		i := 0
		for _, s := range splices {
			out = append(out, sub[i:s.start]...)
			if round < 3 {
				suffixes := st.factorAlternation(sub[s.start:s.start+s.n], flags)
				alt := st.concatOrAlternate(re2OpAlternate, suffixes, flags, false)
				out = append(out, st.concat([]*re2Node{s.prefix, alt}, flags))
			} else {
				out = append(out, s.prefix)
			}
			i = s.start + s.n
		}
		out = append(out, sub[i:]...)
		sub = out
	}
	return sub
}

// Round 1: common literal prefixes.
func re2Round1(sub []*re2Node) []re2Splice {
	var splices []re2Splice
	start := 0
	var runes []rune
	var runeflags re2Flags
	for i := 0; i <= len(sub); i++ {
		var runesI []rune
		var flagsI re2Flags
		if i < len(sub) {
			runesI, flagsI = re2LeadingString(sub[i])
			if flagsI == runeflags {
				same := 0
				for same < len(runes) && same < len(runesI) && runes[same] == runesI[same] {
					same++
				}
				if same > 0 {
					runes = runes[:same]
					continue
				}
			}
		}
		if i-start >= 2 {
			prefix := re2NewLiteralString(runes, runeflags)
			for j := start; j < i; j++ {
				re2RemoveLeadingString(sub[j], len(runes))
			}
			splices = append(splices, re2Splice{prefix, start, i - start})
		}
		if i < len(sub) {
			start, runes, runeflags = i, runesI, flagsI
		}
	}
	return splices
}

// Round 2: a common leading empty-width op, class, any char, any byte or
// fixed repeat of a literal or class.
func re2Round2(sub []*re2Node) []re2Splice {
	var splices []re2Splice
	start := 0
	var first *re2Node
	for i := 0; i <= len(sub); i++ {
		var firstI *re2Node
		if i < len(sub) {
			firstI = re2LeadingRegexp(sub[i])
			if first != nil && re2FactorableLead(first) && re2Equal(first, firstI) {
				continue
			}
		}
		if i-start >= 2 {
			for j := start; j < i; j++ {
				sub[j] = re2RemoveLeadingRegexp(sub[j])
			}
			splices = append(splices, re2Splice{first, start, i - start})
		}
		if i < len(sub) {
			start, first = i, firstI
		}
	}
	return splices
}

func re2FactorableLead(re *re2Node) bool {
	switch re.op {
	case re2OpBeginLine, re2OpEndLine, re2OpWordBoundary, re2OpNoWordBoundary,
		re2OpBeginText, re2OpEndText, re2OpCharClass, re2OpAnyChar, re2OpAnyByte:
		return true
	case re2OpRepeat:
		if re.min != re.max {
			return false
		}
		switch re.sub[0].op {
		case re2OpLiteral, re2OpCharClass, re2OpAnyChar, re2OpAnyByte:
			return true
		}
	}
	return false
}

// Round 3: runs of literals and classes merged into one class.
func (st *re2State) round3(sub []*re2Node, flags re2Flags) []re2Splice {
	var splices []re2Splice
	start := 0
	var first *re2Node
	isLitOrClass := func(re *re2Node) bool {
		return re.op == re2OpLiteral || re.op == re2OpCharClass
	}
	for i := 0; i <= len(sub); i++ {
		var firstI *re2Node
		if i < len(sub) {
			firstI = sub[i]
			if first != nil && isLitOrClass(first) && isLitOrClass(firstI) {
				continue
			}
		}
		if i-start >= 2 {
			cc := &re2Class{}
			for j := start; j < i; j++ {
				re := sub[j]
				if re.op == re2OpCharClass {
					cc.addClass(re.cc)
					continue
				}
				if re.flags&re2FoldCase != 0 {
					// RE2 2022-06-01 adds the folded rune straight into cc,
					// which adds nothing when the rune is already there;
					// later releases fold it into a fresh class first.
					st.divergent = true
					if st.sem.round3FoldFix {
						tmp := &re2Class{}
						tmp.addRangeFlags(st, re.r, re.r, re.flags)
						cc.addClass(tmp)
						continue
					}
				}
				cc.addRangeFlags(st, re.r, re.r, re.flags)
			}
			splices = append(splices, re2Splice{&re2Node{op: re2OpCharClass, flags: flags, cc: cc}, start, i - start})
		}
		if i < len(sub) {
			start, first = i, firstI
		}
	}
	return splices
}

// re2LeadingString is Regexp::LeadingString.
func re2LeadingString(re *re2Node) ([]rune, re2Flags) {
	for re.op == re2OpConcat && len(re.sub) > 0 {
		re = re.sub[0]
	}
	flags := re.flags & re2FoldCase
	switch re.op {
	case re2OpLiteral:
		return []rune{re.r}, flags
	case re2OpLiteralString:
		return re.runes, flags
	}
	return nil, flags
}

// re2RemoveLeadingString is Regexp::RemoveLeadingString; it edits re.
func re2RemoveLeadingString(re *re2Node, n int) {
	var stk []*re2Node
	for re.op == re2OpConcat {
		if len(stk) < 4 {
			stk = append(stk, re)
		}
		re = re.sub[0]
	}
	switch re.op {
	case re2OpLiteral:
		re.r = 0
		re.op = re2OpEmptyMatch
	case re2OpLiteralString:
		switch {
		case n >= len(re.runes):
			re.runes = nil
			re.op = re2OpEmptyMatch
		case n == len(re.runes)-1:
			re.r = re.runes[len(re.runes)-1]
			re.runes = nil
			re.op = re2OpLiteral
		default:
			re.runes = append([]rune(nil), re.runes[n:]...)
		}
	}
	for d := len(stk) - 1; d >= 0; d-- {
		re = stk[d]
		if re.sub[0].op != re2OpEmptyMatch {
			continue
		}
		switch len(re.sub) {
		case 0, 1:
			re.sub = nil
			re.op = re2OpEmptyMatch
		case 2:
			*re = *re.sub[1]
		default:
			re.sub = append([]*re2Node(nil), re.sub[1:]...)
		}
	}
}

// re2LeadingRegexp is Regexp::LeadingRegexp.
func re2LeadingRegexp(re *re2Node) *re2Node {
	if re.op == re2OpEmptyMatch {
		return nil
	}
	if re.op == re2OpConcat && len(re.sub) >= 2 {
		if re.sub[0].op == re2OpEmptyMatch {
			return nil
		}
		return re.sub[0]
	}
	return re
}

// re2RemoveLeadingRegexp is Regexp::RemoveLeadingRegexp.
func re2RemoveLeadingRegexp(re *re2Node) *re2Node {
	if re.op == re2OpEmptyMatch {
		return re
	}
	if re.op == re2OpConcat && len(re.sub) >= 2 {
		if re.sub[0].op == re2OpEmptyMatch {
			return re
		}
		if len(re.sub) == 2 {
			return re.sub[1]
		}
		re.sub = append([]*re2Node(nil), re.sub[1:]...)
		return re
	}
	return &re2Node{op: re2OpEmptyMatch, flags: re.flags}
}
