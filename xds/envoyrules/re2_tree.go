package envoyrules

// Regexp tree (re2/regexp.h).

type re2Flags uint16

const (
	re2FoldCase re2Flags = 1 << iota
	re2Literal
	re2ClassNL
	re2DotNL
	re2OneLine
	re2Latin1
	re2NonGreedy
	re2PerlClasses
	re2PerlB
	re2PerlX
	re2UnicodeGroups
	re2NeverNL
	re2NeverCapture
	re2WasDollar

	re2LikePerl = re2ClassNL | re2OneLine | re2PerlClasses | re2PerlB | re2PerlX | re2UnicodeGroups
)

type re2Op uint8

const (
	re2OpNoMatch re2Op = iota + 1
	re2OpEmptyMatch
	re2OpLiteral
	re2OpLiteralString
	re2OpConcat
	re2OpAlternate
	re2OpStar
	re2OpPlus
	re2OpQuest
	re2OpRepeat
	re2OpCapture
	re2OpAnyChar
	re2OpAnyByte
	re2OpBeginLine
	re2OpEndLine
	re2OpWordBoundary
	re2OpNoWordBoundary
	re2OpBeginText
	re2OpEndText
	re2OpCharClass
	re2OpHaveMatch
	re2OpLeftParen   // parse-stack marker
	re2OpVerticalBar // parse-stack marker
)

const (
	re2Runemax             = 0x10FFFF
	re2MaxRepeat           = 1000
	re2MaxNsub             = 0xFFFF
	re2WalkBudget          = 1000000
	re2MaxMem              = 8 << 20           // RE2::Options default max_mem
	re2SizeofProg          = 432               // sizeof(re2::Prog), x86-64 2022-06-01
	re2SizeofInst          = 8                 // sizeof(re2::Prog::Inst)
	re2ForwardMaxMem       = re2MaxMem * 2 / 3 // RE2::Init gives the forward Prog 2/3
	re2MaxInstructions     = (re2ForwardMaxMem - re2SizeofProg) / re2SizeofInst
	re2MinFold, re2MaxFold = 0x41, 0x1E943 // runes outside have no case fold
)

type re2Node struct {
	op     re2Op
	flags  re2Flags
	simple bool
	sub    []*re2Node
	r      rune      // re2OpLiteral
	runes  []rune    // re2OpLiteralString
	min    int       // re2OpRepeat
	max    int       // re2OpRepeat; -1 is no maximum
	cap    int       // re2OpCapture, re2OpLeftParen (-1: non-capturing)
	cc     *re2Class // re2OpCharClass
	ccOpen bool      // cc is still RE2's CharClassBuilder (not yet finished)
}

func re2IsMarker(op re2Op) bool { return op >= re2OpLeftParen }

func re2NewLiteralString(runes []rune, flags re2Flags) *re2Node {
	switch len(runes) {
	case 0:
		return &re2Node{op: re2OpEmptyMatch, flags: flags}
	case 1:
		return &re2Node{op: re2OpLiteral, flags: flags, r: runes[0]}
	}
	return &re2Node{op: re2OpLiteralString, flags: flags, runes: append([]rune(nil), runes...)}
}

// re2ConcatOrAlternate is Regexp::ConcatOrAlternate.
func (st *re2State) concatOrAlternate(op re2Op, sub []*re2Node, flags re2Flags, canFactor bool) *re2Node {
	if len(sub) == 1 {
		return sub[0]
	}
	if len(sub) == 0 {
		if op == re2OpAlternate {
			return &re2Node{op: re2OpNoMatch, flags: flags}
		}
		return &re2Node{op: re2OpEmptyMatch, flags: flags}
	}
	if op == re2OpAlternate && canFactor {
		sub = st.factorAlternation(append([]*re2Node(nil), sub...), flags)
		if len(sub) == 1 {
			return sub[0]
		}
	}
	if len(sub) > re2MaxNsub {
		nbig := (len(sub) + re2MaxNsub - 1) / re2MaxNsub
		re := &re2Node{op: op, flags: flags, sub: make([]*re2Node, nbig)}
		for i := 0; i < nbig; i++ {
			end := min((i+1)*re2MaxNsub, len(sub))
			re.sub[i] = st.concatOrAlternate(op, sub[i*re2MaxNsub:end], flags, false)
		}
		return re
	}
	return &re2Node{op: op, flags: flags, sub: append([]*re2Node(nil), sub...)}
}

func (st *re2State) concat(sub []*re2Node, flags re2Flags) *re2Node {
	return st.concatOrAlternate(re2OpConcat, sub, flags, false)
}

// re2StarPlusOrQuest is Regexp::StarPlusOrQuest, which squashes x** etc.
func re2StarPlusOrQuest(op re2Op, sub *re2Node, flags re2Flags) *re2Node {
	if op == sub.op && flags == sub.flags {
		return sub
	}
	if (sub.op == re2OpStar || sub.op == re2OpPlus || sub.op == re2OpQuest) && flags == sub.flags {
		if sub.op == re2OpStar {
			return sub
		}
		return &re2Node{op: re2OpStar, flags: flags, sub: []*re2Node{sub.sub[0]}}
	}
	return &re2Node{op: op, flags: flags, sub: []*re2Node{sub}}
}

// computeSimple is Regexp::ComputeSimple.
func (re *re2Node) computeSimple() bool {
	switch re.op {
	case re2OpNoMatch, re2OpEmptyMatch, re2OpLiteral, re2OpLiteralString,
		re2OpBeginLine, re2OpEndLine, re2OpBeginText, re2OpWordBoundary,
		re2OpNoWordBoundary, re2OpEndText, re2OpAnyChar, re2OpAnyByte, re2OpHaveMatch:
		return true
	case re2OpConcat, re2OpAlternate:
		for _, s := range re.sub {
			if !s.simple {
				return false
			}
		}
		return true
	case re2OpCharClass:
		return re.cc.nrunes != 0 && re.cc.nrunes != re2Runemax+1
	case re2OpCapture:
		return re.sub[0].simple
	case re2OpStar, re2OpPlus, re2OpQuest:
		s := re.sub[0]
		if !s.simple {
			return false
		}
		switch s.op {
		case re2OpStar, re2OpPlus, re2OpQuest, re2OpEmptyMatch, re2OpNoMatch:
			return false
		}
		return true
	}
	return false
}

// re2TopEqual and re2Equal are Regexp::Equal.
func re2TopEqual(a, b *re2Node) bool {
	if a.op != b.op {
		return false
	}
	switch a.op {
	case re2OpEndText:
		return (a.flags^b.flags)&re2WasDollar == 0
	case re2OpLiteral:
		return a.r == b.r && (a.flags^b.flags)&re2FoldCase == 0
	case re2OpLiteralString:
		if len(a.runes) != len(b.runes) || (a.flags^b.flags)&re2FoldCase != 0 {
			return false
		}
		for i := range a.runes {
			if a.runes[i] != b.runes[i] {
				return false
			}
		}
		return true
	case re2OpAlternate, re2OpConcat:
		return len(a.sub) == len(b.sub)
	case re2OpStar, re2OpPlus, re2OpQuest:
		return (a.flags^b.flags)&re2NonGreedy == 0
	case re2OpRepeat:
		return (a.flags^b.flags)&re2NonGreedy == 0 && a.min == b.min && a.max == b.max
	case re2OpCapture:
		return a.cap == b.cap
	case re2OpCharClass:
		if a.cc.nrunes != b.cc.nrunes || len(a.cc.r) != len(b.cc.r) {
			return false
		}
		for i := range a.cc.r {
			if a.cc.r[i] != b.cc.r[i] {
				return false
			}
		}
		return true
	}
	return true
}

func re2Equal(a, b *re2Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !re2TopEqual(a, b) {
		return false
	}
	for i := range a.sub {
		if !re2Equal(a.sub[i], b.sub[i]) {
			return false
		}
	}
	return true
}

// re2RequiredPrefix is Regexp::RequiredPrefix: ^literal... loses its ^ and
// its literal before compilation.
func re2RequiredPrefix(re *re2Node) (prefix []rune, suffix *re2Node, ok bool) {
	if re.op != re2OpConcat {
		return nil, nil, false
	}
	i := 0
	for i < len(re.sub) && re.sub[i].op == re2OpBeginText {
		i++
	}
	if i == 0 || i >= len(re.sub) {
		return nil, nil, false
	}
	lit := re.sub[i]
	switch lit.op {
	case re2OpLiteral:
		prefix = []rune{lit.r}
	case re2OpLiteralString:
		prefix = lit.runes
	default:
		return nil, nil, false
	}
	i++
	if i < len(re.sub) {
		st := &re2State{}
		suffix = st.concat(re.sub[i:], re.flags)
	} else {
		suffix = &re2Node{op: re2OpEmptyMatch, flags: re.flags}
	}
	return prefix, suffix, true
}
