package envoyrules

// Parser (re2/parse.cc).

// re2ParseError is RE2's RegexpStatus: a code's text and the piece of the
// pattern it is about.
type re2ParseError struct {
	code string
	arg  string
}

func (e *re2ParseError) Error() string {
	if e.arg == "" {
		return e.code
	}
	return e.code + ": " + e.arg
}

const (
	re2ErrInternal          = "unexpected error"
	re2ErrBadEscape         = "invalid escape sequence"
	re2ErrBadCharRange      = "invalid character class range"
	re2ErrMissingBracket    = "missing ]"
	re2ErrMissingParen      = "missing )"
	re2ErrUnexpectedParen   = "unexpected )"
	re2ErrTrailingBackslash = "trailing \\"
	re2ErrRepeatArgument    = "no argument for repetition operator"
	re2ErrRepeatSize        = "invalid repetition size"
	re2ErrRepeatOp          = "bad repetition operator"
	re2ErrBadPerlOp         = "invalid perl operator"
	re2ErrBadUTF8           = "invalid UTF-8"
	re2ErrBadNamedCapture   = "invalid named capture group"
	re2ErrPatternTooLarge   = "pattern too large - compile failed"
)

type re2Parser struct {
	st    *re2State
	flags re2Flags
	whole string
	stack []*re2Node
	ncap  int
}

func (p *re2Parser) top() *re2Node {
	if len(p.stack) == 0 {
		return nil
	}
	return p.stack[len(p.stack)-1]
}

// finish is FinishRegexp: a CharClassBuilder becomes a CharClass.
func re2Finish(re *re2Node) *re2Node {
	if re.op == re2OpCharClass {
		re.ccOpen = false
	}
	return re
}

// pushRegexp is ParseState::PushRegexp.
func (p *re2Parser) pushRegexp(re *re2Node) {
	p.maybeConcatString(-1, 0)
	if re.op == re2OpCharClass && re.ccOpen {
		switch re.cc.nrunes {
		case 1:
			re = &re2Node{op: re2OpLiteral, flags: p.flags, r: re.cc.r[0].lo}
		case 2:
			r := re.cc.r[0].lo
			if 'A' <= r && r <= 'Z' && re.cc.contains(r+'a'-'A') {
				re = &re2Node{op: re2OpLiteral, flags: p.flags | re2FoldCase, r: r + 'a' - 'A'}
			}
		}
	}
	if !re2IsMarker(re.op) {
		re.simple = re.computeSimple()
	}
	p.stack = append(p.stack, re)
}

// maybeConcatString is ParseState::MaybeConcatString.
func (p *re2Parser) maybeConcatString(r rune, flags re2Flags) bool {
	n := len(p.stack)
	if n < 2 {
		return false
	}
	re1, re2 := p.stack[n-1], p.stack[n-2]
	if re1.op != re2OpLiteral && re1.op != re2OpLiteralString {
		return false
	}
	if re2.op != re2OpLiteral && re2.op != re2OpLiteralString {
		return false
	}
	if re1.flags&re2FoldCase != re2.flags&re2FoldCase {
		return false
	}
	if re2.op == re2OpLiteral {
		re2.op = re2OpLiteralString
		re2.runes = []rune{re2.r}
		re2.r = 0
	}
	if re1.op == re2OpLiteral {
		re2.runes = append(re2.runes, re1.r)
	} else {
		re2.runes = append(re2.runes, re1.runes...)
		re1.runes = nil
	}
	if r >= 0 {
		re1.op = re2OpLiteral
		re1.r = r
		re1.flags = flags
		return true
	}
	p.stack = p.stack[:n-1]
	return false
}

func (p *re2Parser) newClass(flags re2Flags) *re2Node {
	return &re2Node{op: re2OpCharClass, flags: flags, cc: &re2Class{}, ccOpen: true}
}

// pushLiteral is ParseState::PushLiteral.
func (p *re2Parser) pushLiteral(r rune) {
	if p.flags&re2FoldCase != 0 && p.st.simpleFold(r) != r {
		re := p.newClass(p.flags &^ re2FoldCase)
		r1 := r
		for {
			if p.flags&re2NeverNL == 0 || r != '\n' {
				re.cc.addRange(r, r)
			}
			r = p.st.simpleFold(r)
			if r == r1 {
				break
			}
		}
		p.pushRegexp(re)
		return
	}
	if p.flags&re2NeverNL != 0 && r == '\n' {
		p.pushRegexp(&re2Node{op: re2OpNoMatch, flags: p.flags})
		return
	}
	if p.maybeConcatString(r, p.flags) {
		return
	}
	p.pushRegexp(&re2Node{op: re2OpLiteral, flags: p.flags, r: r})
}

func (p *re2Parser) pushSimpleOp(op re2Op) {
	p.pushRegexp(&re2Node{op: op, flags: p.flags})
}

func (p *re2Parser) pushCaret() {
	if p.flags&re2OneLine != 0 {
		p.pushSimpleOp(re2OpBeginText)
		return
	}
	p.pushSimpleOp(re2OpBeginLine)
}

func (p *re2Parser) pushDollar() {
	if p.flags&re2OneLine != 0 {
		p.pushRegexp(&re2Node{op: re2OpEndText, flags: p.flags | re2WasDollar})
		return
	}
	p.pushSimpleOp(re2OpEndLine)
}

func (p *re2Parser) pushDot() {
	if p.flags&re2DotNL != 0 && p.flags&re2NeverNL == 0 {
		p.pushSimpleOp(re2OpAnyChar)
		return
	}
	re := p.newClass(p.flags &^ re2FoldCase)
	re.cc.addRange(0, '\n'-1)
	re.cc.addRange('\n'+1, re2Runemax)
	p.pushRegexp(re)
}

// pushRepeatOp is ParseState::PushRepeatOp (*, +, ?).
func (p *re2Parser) pushRepeatOp(op re2Op, opstr string, nongreedy bool) error {
	top := p.top()
	if top == nil || re2IsMarker(top.op) {
		return &re2ParseError{re2ErrRepeatArgument, opstr}
	}
	fl := p.flags
	if nongreedy {
		fl ^= re2NonGreedy
	}
	if op == top.op && fl == top.flags {
		return nil
	}
	if (top.op == re2OpStar || top.op == re2OpPlus || top.op == re2OpQuest) && fl == top.flags {
		top.op = re2OpStar
		return nil
	}
	re := &re2Node{op: op, flags: fl, sub: []*re2Node{re2Finish(top)}}
	re.simple = re.computeSimple()
	p.stack[len(p.stack)-1] = re
	return nil
}

// pushRepetition is ParseState::PushRepetition ({n}, {n,}, {n,m}).
func (p *re2Parser) pushRepetition(lo, hi int, opstr string, nongreedy bool) error {
	if (hi != -1 && hi < lo) || lo > re2MaxRepeat || hi > re2MaxRepeat {
		return &re2ParseError{re2ErrRepeatSize, opstr}
	}
	top := p.top()
	if top == nil || re2IsMarker(top.op) {
		return &re2ParseError{re2ErrRepeatArgument, opstr}
	}
	fl := p.flags
	if nongreedy {
		fl ^= re2NonGreedy
	}
	re := &re2Node{op: re2OpRepeat, flags: fl, min: lo, max: hi, sub: []*re2Node{re2Finish(top)}}
	re.simple = re.computeSimple()
	p.stack[len(p.stack)-1] = re
	if lo >= 2 || hi >= 2 {
		budget := re2WalkBudget
		if re2RepetitionWalk(re, re2MaxRepeat, &budget) == 0 {
			return &re2ParseError{re2ErrRepeatSize, opstr}
		}
	}
	return nil
}

// re2RepetitionWalk is RepetitionWalker: the smallest share of the 1000
// copies left at any node after dividing by the counts above it.
func re2RepetitionWalk(re *re2Node, parent int, budget *int) int {
	if *budget--; *budget < 0 {
		return 0
	}
	arg := parent
	if re.op == re2OpRepeat {
		m := re.max
		if m < 0 {
			m = re.min
		}
		if m > 0 {
			arg /= m
		}
	}
	res := arg
	var prev *re2Node
	prevRes := 0
	for i, s := range re.sub {
		var c int
		if i > 0 && s == prev {
			c = prevRes
		} else {
			c = re2RepetitionWalk(s, arg, budget)
		}
		prev, prevRes = s, c
		res = min(res, c)
	}
	return res
}

func (p *re2Parser) doLeftParen() {
	p.ncap++
	p.pushRegexp(&re2Node{op: re2OpLeftParen, flags: p.flags, cap: p.ncap})
}

func (p *re2Parser) doLeftParenNoCapture() {
	p.pushRegexp(&re2Node{op: re2OpLeftParen, flags: p.flags, cap: -1})
}

// doVerticalBar is ParseState::DoVerticalBar.
func (p *re2Parser) doVerticalBar() {
	p.maybeConcatString(-1, 0)
	p.doConcatenation()
	n := len(p.stack)
	if n >= 2 && p.stack[n-2].op == re2OpVerticalBar {
		r1, r2 := p.stack[n-1], p.stack[n-2]
		if n >= 3 {
			r3 := p.stack[n-3]
			if r1.op == re2OpAnyChar || r3.op == re2OpAnyChar {
				if r3.op == re2OpAnyChar && (r1.op == re2OpLiteral || r1.op == re2OpCharClass || r1.op == re2OpAnyChar) {
					p.stack = p.stack[:n-1]
					return
				}
				if r1.op == re2OpAnyChar && (r3.op == re2OpLiteral || r3.op == re2OpCharClass || r3.op == re2OpAnyChar) {
					p.stack[n-3] = r1
					p.stack = p.stack[:n-1]
					return
				}
			}
		}
		p.stack[n-2], p.stack[n-1] = r1, r2
		return
	}
	p.pushSimpleOp(re2OpVerticalBar)
}

func (p *re2Parser) doConcatenation() {
	if top := p.top(); top == nil || re2IsMarker(top.op) {
		p.pushRegexp(&re2Node{op: re2OpEmptyMatch, flags: p.flags})
	}
	p.doCollapse(re2OpConcat)
}

func (p *re2Parser) doAlternation() {
	p.doVerticalBar()
	p.stack = p.stack[:len(p.stack)-1] // the vertical bar
	p.doCollapse(re2OpAlternate)
}

// doCollapse is ParseState::DoCollapse.
func (p *re2Parser) doCollapse(op re2Op) {
	i := len(p.stack)
	for i > 0 && !re2IsMarker(p.stack[i-1].op) {
		i--
	}
	items := p.stack[i:]
	if len(items) == 1 {
		return
	}
	var subs []*re2Node
	for _, it := range items {
		if it.op == op {
			subs = append(subs, it.sub...)
		} else {
			subs = append(subs, re2Finish(it))
		}
	}
	re := p.st.concatOrAlternate(op, subs, p.flags, true)
	re.simple = re.computeSimple()
	p.stack = append(p.stack[:i], re)
}

// doRightParen is ParseState::DoRightParen.
func (p *re2Parser) doRightParen() error {
	p.doAlternation()
	n := len(p.stack)
	if n < 2 || p.stack[n-2].op != re2OpLeftParen {
		return &re2ParseError{re2ErrUnexpectedParen, p.whole}
	}
	r1, r2 := p.stack[n-1], p.stack[n-2]
	p.stack = p.stack[:n-2]
	p.flags = r2.flags
	re := r1
	if r2.cap > 0 {
		re = r2
		re.op = re2OpCapture
		re.sub = []*re2Node{re2Finish(r1)}
		re.simple = re.computeSimple()
	}
	p.pushRegexp(re)
	return nil
}

func (p *re2Parser) doFinish() (*re2Node, error) {
	p.doAlternation()
	if len(p.stack) != 1 {
		return nil, &re2ParseError{re2ErrMissingParen, p.whole}
	}
	return re2Finish(p.stack[0]), nil
}
