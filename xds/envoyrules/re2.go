package envoyrules

// This file ports the part of RE2 (github.com/google/re2, the C++ library
// Envoy uses for every google_re2 / safe_regex matcher) that decides a
// regex's program size. See RE2ProgramSize.

import (
	"errors"
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"
)

// RE2ProgramSize returns the value re2::RE2::ProgramSize() has for pattern
// when it is compiled the way Envoy compiles a google_re2 regex
// (source/common/common/regex.cc: re2::RE2(regex, re2::RE2::Quiet), that is
// RE2's default options: UTF-8, Perl-like syntax, case-sensitive, longest
// match off, max_mem 8 MiB). Envoy refuses a regex whose program size is
// above the runtime value re2.max_program_size.error_level (100 unless set),
// or above a matcher's deprecated google_re2.max_program_size, so a control
// plane can compare this value with the same limit before it sends the
// config. It returns an error for a pattern RE2 refuses (with RE2's message)
// and for one RE2 refuses as too large to compile.
//
// What is counted: ProgramSize is the number of instructions of RE2's
// forward program after RE2 has flattened it (re2/prog.cc: Prog::Flatten),
// not the number the compiler emitted. This is a port, step by step, of what
// RE2 does in RE2::Init:
//
//   - re2/parse.cc: the parser builds RE2's tree, with RE2's own rewrites:
//     literal strings, [Aa] read as a case-folded a, one-rune classes read as
//     literals, (?i) letters read as classes of their fold orbits, x** / x*+
//     / x+? ... squashed to one star, . absorbing a literal or class next to
//     it in an alternation, and the factoring of alternations (common literal
//     prefixes; a common leading empty-width op, class or fixed repeat; runs
//     of literals and classes merged into one class).
//   - re2/re2.cc, re2/regexp.cc (RequiredPrefix): for a pattern of the form
//     ^literal..., the ^ and the literal are taken off and only the rest is
//     compiled (RE2 matches that prefix with memcmp).
//   - re2/simplify.cc: x* x+ x? x{n,m} x next to each other coalesced into
//     one repeat, then x{n,m} expanded into n copies of x and m-n nested x?
//     (x{2,5} is xx(x(x(x)?)?)?), empty classes turned into "no match" and
//     the full class into any-character.
//   - re2/compile.cc (Compiler::Compile): leading ^ and trailing $ are
//     removed and recorded as anchors; each literal byte is one ByteRange,
//     a capture two Capture instructions, ^ $ \b \B one EmptyWidth each,
//     every | * + ? one Alt (a star of something that can match empty is
//     compiled as (x+)?, two Alts), (?:) a Nop, plus one Match and the Fail
//     instruction 0; classes are compiled to UTF-8 byte-range tries with
//     RE2's suffix cache and its special form for 80-10FFFF, and ASCII case
//     folding kept as a flag on the byte range. When the pattern does not
//     start with ^, the .*? loop of unanchored search (one Alt and one
//     ByteRange 00-FF) is added.
//   - re2/prog.cc: Optimize (Nops skipped, AltMatch recognised) and Flatten,
//     whose lists drop Alt and Nop instructions, copy an instruction into
//     each list that reaches it, and add a Nop wherever a list jumps to
//     another list. The size of the flattened program is what is returned.
//
// Which RE2: Envoy builds the RE2 release its own version pins, so the
// count is made for each RE2 release from 2021-11-01 to 2025-11-05 whose
// program sizes differ (re2Releases) and the largest is returned: never
// less than what any of them gives, and equal to all of them for nearly
// every pattern. They differ in three ways: RE2 from 2023-08-01 compiles a
// repeat of empty-width ops (like (?:^){5} or \b{2,}) as one copy; RE2 from
// 2024-02-01 keeps the upper-case letter of a case-folded literal merged
// into a class in an alternation (a|(?i:a)|b), which older ones could drop;
// and the Unicode tables behind \p{...} and (?i) are 14.0.0 up to
// 2022-06-01, 15.0.0 from 2022-12-01 and 15.1.0 from 2023-11-01 (so \pL is
// 1170, 1197 or 1200). The tables are Go's unicode package (15.0.0, which
// the test checks) corrected by the generated differences to RE2's 14.0.0
// and 15.1.0 tables. A pattern any of these releases refuses is refused.
// Releases before 2021-11-01 (Unicode 13, a different compilation of x* for
// a nullable x) are not modelled.
//
// Exactness: re2_test.go holds sizes measured with the real library
// (hack/re2size): Debian 12's libre2-9 (RE2 2022-06-01, whose tables Debian
// regenerates from its Unicode 15.0.0 data) for the main table, and builds
// of upstream 2022-06-01, 2023-09-01, 2023-11-01 and 2024-02-01 for the
// patterns where releases differ. The port gives each of them exactly;
// over-counting happens only as the maximum over releases.
//
// The "pattern too large" limit (RE2 refuses to compile more than 698996
// instructions before flattening, or to walk more than twice that many
// nodes, with 8 MiB of max_mem) is ported with the sizes of the x86-64
// build; it is far above any limit Envoy is run with. Envoy versions that
// raise max_mem with the program-size limit accept larger patterns than
// this refuses.
//
// Why not Go's regexp/syntax tree: Go's parser is a port of RE2's from 2011
// and builds a different tree for some patterns: it does not factor a
// leading ^ or \b out of an alternation (RE2 makes ^a|^b ^[ab], 3
// instructions), merges literals and (?s). into one any-character where
// RE2 keeps an alternation (a|b|(?s). is 12 in RE2, 11 for (?s).), keeps
// (?:a+)? as two operators where RE2 squashes it to a*, reads [Δδ] as a
// folded literal where RE2 keeps a class, and does not coalesce a*a+ into
// a+. Counting over Go's tree would be off by a few instructions for such
// patterns, so this file parses with a port of RE2's parser instead; the
// language accepted is RE2's, which is nearly Go's:
//
//   - RE2 accepts \C (any byte); Go does not.
//   - RE2 accepts (?P<name>...) with any Unicode letter, digit, mark or
//     connector punctuation in the name; Go accepts only [A-Za-z0-9_].
//   - (?<name>...) is refused, as by RE2 before 2023-09-01 (RE2 accepts it
//     since then, Go since 1.22): use (?P<name>...), which all releases take.
//   - \p{...} takes RE2's names only: Any, the general categories (L, Lu,
//     ...; C is Cc|Cf|Co|Cs, without the unassigned runes Go's C has) and the
//     script names, case-sensitively; Go also accepts long and differently
//     cased names.
//   - A count of ten digits or more ({1000000000}) is a literal in RE2, an
//     error in Go; counts above 1000 are errors in both. RE2 also refuses a
//     repeat whose nested counts multiply past 1000 through an inner {0}.
//   - RE2 has no nesting-depth or size limit at parse time; Go refuses more
//     than 1000 nested groups and very large expressions.
//   - Invalid UTF-8 in the pattern is refused (RE2 would also take an
//     encoded surrogate; a protobuf string cannot hold one).
func RE2ProgramSize(pattern string) (int, error) {
	size, divergent, err := re2ProgramSize(pattern, re2Releases[0])
	if err != nil || !divergent {
		return size, err
	}
	for _, sem := range re2Releases[1:] {
		n, _, err := re2ProgramSize(pattern, sem)
		if err != nil {
			return 0, err
		}
		size = max(size, n)
	}
	return size, nil
}

// re2Unicode is the Unicode edition of an RE2 release's tables.
type re2Unicode uint8

const (
	re2Unicode140 re2Unicode = iota // RE2 2021-11-01 to 2022-06-01
	re2Unicode150                   // RE2 2022-12-01 to 2023-09-01; Go's unicode package
	re2Unicode151                   // RE2 2023-11-01 and later
)

// re2Semantics is what, in one RE2 release, changes program sizes
// compared with the others.
type re2Semantics struct {
	release string
	unicode re2Unicode
	// capEmptyRepeats: SimplifyRepeat caps the count of a repeat of
	// empty-width ops at 1 (RE2 commit e6646331, release 2023-08-01).
	capEmptyRepeats bool
	// round3FoldFix: Round 3 of alternation factoring adds a folded
	// literal through a fresh class (RE2 commit 9d0b5bf5, 2024-02-01).
	round3FoldFix bool
}

// re2Releases are the RE2 releases RE2ProgramSize counts for: those from
// 2021-11-01, when the compiler reached its current form and RE2's tables
// Unicode 14.0.0, to 2025-11-05 (no release after 2024-02-01 changes a
// program size).
var re2Releases = []re2Semantics{
	{release: "2021-11-01 to 2022-06-01", unicode: re2Unicode140},
	// Also Debian 12's libre2-9 (2022-06-01 with tables regenerated from
	// Debian's Unicode 15.0.0 data), which measured re2_test.go's table.
	{release: "2022-12-01 to 2023-07-01", unicode: re2Unicode150},
	{release: "2023-08-01 to 2023-09-01", unicode: re2Unicode150, capEmptyRepeats: true},
	{release: "2023-11-01", unicode: re2Unicode151, capEmptyRepeats: true},
	{release: "2024-02-01 to 2025-11-05", unicode: re2Unicode151, capEmptyRepeats: true, round3FoldFix: true},
}

const (
	re2ReleaseUpstream20220601 = 0 // index in re2Releases of upstream 2022-06-01
	re2ReleaseDebian12         = 1 // index in re2Releases of Debian 12's build
	re2ReleaseCurrent          = 4 // index in re2Releases of current RE2
)

// re2ProgramSize computes the program size under one release's semantics.
// divergent reports whether the pattern reached code where the releases
// differ (otherwise every re2Semantics gives the same size).
func re2ProgramSize(pattern string, sem re2Semantics) (size int, divergent bool, err error) {
	st := &re2State{sem: sem}
	re, err := st.parse(pattern, re2LikePerl)
	if err != nil {
		return 0, false, err
	}
	if _, suffix, ok := re2RequiredPrefix(re); ok {
		re = suffix
	}
	size, err = st.compile(re)
	return size, st.divergent, err
}

// re2State carries what one computation shares between its phases.
type re2State struct {
	sem       re2Semantics
	divergent bool
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// Character classes (CharClassBuilder in re2/regexp.cc).

type re2Range struct{ lo, hi rune }

// re2Class is a sorted list of non-overlapping, non-abutting ranges.
type re2Class struct {
	r      []re2Range
	nrunes int
}

// addRange adds lo-hi and reports whether the class grew (RE2: false when
// lo-hi was already wholly in the class).
func (c *re2Class) addRange(lo, hi rune) bool {
	if hi < lo {
		return false
	}
	i := sort.Search(len(c.r), func(k int) bool { return c.r[k].hi >= lo })
	if i < len(c.r) && c.r[i].lo <= lo && hi <= c.r[i].hi {
		return false
	}
	j := sort.Search(len(c.r), func(k int) bool { return c.r[k].hi >= lo-1 })
	k := j
	for k < len(c.r) && c.r[k].lo <= hi+1 {
		lo = min(lo, c.r[k].lo)
		hi = max(hi, c.r[k].hi)
		c.nrunes -= int(c.r[k].hi - c.r[k].lo + 1)
		k++
	}
	c.nrunes += int(hi - lo + 1)
	switch {
	case k == j:
		c.r = append(c.r, re2Range{})
		copy(c.r[j+1:], c.r[j:])
		c.r[j] = re2Range{lo, hi}
	default:
		c.r[j] = re2Range{lo, hi}
		c.r = append(c.r[:j+1], c.r[k:]...)
	}
	return true
}

func (c *re2Class) addClass(o *re2Class) {
	for _, r := range o.r {
		c.addRange(r.lo, r.hi)
	}
}

func (c *re2Class) contains(x rune) bool {
	i := sort.Search(len(c.r), func(k int) bool { return c.r[k].hi >= x })
	return i < len(c.r) && c.r[i].lo <= x
}

func (c *re2Class) negate() {
	var v []re2Range
	next := rune(0)
	for _, r := range c.r {
		if r.lo > next {
			v = append(v, re2Range{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= re2Runemax {
		v = append(v, re2Range{next, re2Runemax})
	}
	c.r = v
	c.nrunes = re2Runemax + 1 - c.nrunes
}

// foldsASCII is CharClass::FoldsASCII: the class holds the same letters in
// A-Z as in a-z.
func (c *re2Class) foldsASCII() bool {
	var upper, lower uint32
	for _, r := range c.r {
		if lo, hi := max(r.lo, 'A'), min(r.hi, 'Z'); lo <= hi {
			upper |= uint32(1<<(hi-lo+1)-1) << uint32(lo-'A')
		}
		if lo, hi := max(r.lo, 'a'), min(r.hi, 'z'); lo <= hi {
			lower |= uint32(1<<(hi-lo+1)-1) << uint32(lo-'a')
		}
	}
	return upper == lower
}

// addRangeFlags is CharClassBuilder::AddRangeFlags.
func (c *re2Class) addRangeFlags(st *re2State, lo, hi rune, flags re2Flags) {
	cutnl := flags&re2ClassNL == 0 || flags&re2NeverNL != 0
	if cutnl && lo <= '\n' && '\n' <= hi {
		if lo < '\n' {
			c.addRangeFlags(st, lo, '\n'-1, flags)
		}
		if hi > '\n' {
			c.addRangeFlags(st, '\n'+1, hi, flags)
		}
		return
	}
	if flags&re2FoldCase != 0 {
		c.addFoldedRange(st, lo, hi)
	} else {
		c.addRange(lo, hi)
	}
}

// addFoldedRange is AddFoldedRange: lo-hi and everything its runes fold to,
// except that nothing is added when lo-hi is already in the class.
func (c *re2Class) addFoldedRange(st *re2State, lo, hi rune) {
	if !c.addRange(lo, hi) {
		return
	}
	for r := range re2Fold151 {
		if lo <= r && r <= hi {
			st.divergent = true
		}
	}
	folds := st.foldRunes()
	i := sort.Search(len(folds), func(k int) bool { return folds[k] >= lo })
	for ; i < len(folds) && folds[i] <= hi; i++ {
		r := folds[i]
		for f := st.simpleFold(r); f != r; f = st.simpleFold(f) {
			c.addRange(f, f)
		}
	}
}

// re2Fold151 are the simple case folds Unicode 15.1.0 added to the 15.0.0
// ones of Go's unicode package (RE2's tables are 15.1.0 since 2023-10).
var re2Fold151 = map[rune]rune{
	0x390: 0x1FD3, 0x1FD3: 0x390,
	0x3B0: 0x1FE3, 0x1FE3: 0x3B0,
	0xFB05: 0xFB06, 0xFB06: 0xFB05,
}

// simpleFold is the next rune in r's case-fold orbit, in the Unicode
// edition of st's RE2 release (RE2's CycleFoldRune, in another order).
func (st *re2State) simpleFold(r rune) rune {
	if f, ok := re2Fold151[r]; ok {
		st.divergent = true
		if st.sem.unicode == re2Unicode151 {
			return f
		}
		return r
	}
	return unicode.SimpleFold(r)
}

var (
	re2FoldOnce               sync.Once
	re2FoldTab, re2FoldTab151 []rune
)

// foldRunes lists, in order, the runes that have a simple case fold.
func (st *re2State) foldRunes() []rune {
	re2FoldOnce.Do(func() {
		for r := rune(re2MinFold); r <= re2MaxFold; r++ {
			_, in151 := re2Fold151[r]
			if unicode.SimpleFold(r) != r {
				re2FoldTab = append(re2FoldTab, r)
				re2FoldTab151 = append(re2FoldTab151, r)
			} else if in151 {
				re2FoldTab151 = append(re2FoldTab151, r)
			}
		}
	})
	if st.sem.unicode == re2Unicode151 {
		return re2FoldTab151
	}
	return re2FoldTab
}

// re2Group is RE2's UGroup: ranges and a sign (-1: the group is negated).
type re2Group struct {
	sign   int
	ranges []re2Range
}

var (
	re2PerlGroups = map[string]re2Group{
		`\d`: {+1, []re2Range{{'0', '9'}}},
		`\D`: {-1, []re2Range{{'0', '9'}}},
		`\s`: {+1, []re2Range{{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}}},
		`\S`: {-1, []re2Range{{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}}},
		`\w`: {+1, []re2Range{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}},
		`\W`: {-1, []re2Range{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}},
	}
	re2PosixGroups = func() map[string]re2Group {
		m := map[string]re2Group{}
		for name, rs := range map[string][]re2Range{
			"alnum":  {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}},
			"alpha":  {{'A', 'Z'}, {'a', 'z'}},
			"ascii":  {{0, 0x7F}},
			"blank":  {{'\t', '\t'}, {' ', ' '}},
			"cntrl":  {{0, 0x1F}, {0x7F, 0x7F}},
			"digit":  {{'0', '9'}},
			"graph":  {{'!', '~'}},
			"lower":  {{'a', 'z'}},
			"print":  {{' ', '~'}},
			"punct":  {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}},
			"space":  {{'\t', '\r'}, {' ', ' '}},
			"upper":  {{'A', 'Z'}},
			"word":   {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}},
			"xdigit": {{'0', '9'}, {'A', 'F'}, {'a', 'f'}},
		} {
			m["[:"+name+":]"] = re2Group{+1, rs}
			m["[:^"+name+":]"] = re2Group{-1, rs}
		}
		return m
	}()
	// re2Categories are the general categories RE2 has groups for.
	re2Categories = map[string]bool{
		"C": true, "Cc": true, "Cf": true, "Co": true, "Cs": true,
		"L": true, "Ll": true, "Lm": true, "Lo": true, "Lt": true, "Lu": true,
		"M": true, "Mc": true, "Me": true, "Mn": true,
		"N": true, "Nd": true, "Nl": true, "No": true,
		"P": true, "Pc": true, "Pd": true, "Pe": true, "Pf": true, "Pi": true, "Po": true, "Ps": true,
		"S": true, "Sc": true, "Sk": true, "Sm": true, "So": true,
		"Z": true, "Zl": true, "Zp": true, "Zs": true,
	}
	re2UnicodeGroupCache sync.Map // edition digit + name -> []re2Range

	// re2Scripts150 are the scripts new in Unicode 15.0.0.
	re2Scripts150 = map[string]bool{"Kawi": true, "Nag_Mundari": true}

	// The differences between Go's unicode tables (15.0.0, checked by
	// TestRE2UnicodeVersion) and RE2's, generated from RE2's
	// re2/unicode_groups.cc of 2022-06-01 and 2024-02-01.
	// Unicode 14.0.0 (RE2 2021-11-01 to 2022-06-01): runes Go's 15.0.0 tables have and RE2's do not.
	re2Unicode14Removed = map[string][]re2Range{
		"Arabic":               {{0x10EFD, 0x10EFF}},
		"C":                    {{0x13439, 0x1343F}},
		"Cf":                   {{0x13439, 0x1343F}},
		"Common":               {{0x1D2C0, 0x1D2D3}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABD}, {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB}, {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8}},
		"Cyrillic":             {{0x1E030, 0x1E06D}, {0x1E08F, 0x1E08F}},
		"Devanagari":           {{0x11B00, 0x11B09}},
		"Egyptian_Hieroglyphs": {{0x1342F, 0x1342F}, {0x13439, 0x13455}},
		"Han":                  {{0x2B739, 0x2B739}, {0x31350, 0x323AF}},
		"Hiragana":             {{0x1B132, 0x1B132}},
		"Kannada":              {{0xCF3, 0xCF3}},
		"Katakana":             {{0x1B155, 0x1B155}},
		"Khojki":               {{0x1123F, 0x11241}},
		"L":                    {{0x1123F, 0x11240}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x2B739, 0x2B739}, {0x31350, 0x323AF}},
		"Lao":                  {{0xECE, 0xECE}},
		"Latin":                {{0x1DF25, 0x1DF2A}},
		"Ll":                   {{0x1DF25, 0x1DF2A}},
		"Lm":                   {{0x1E030, 0x1E06D}, {0x1E4EB, 0x1E4EB}},
		"Lo":                   {{0x1123F, 0x11240}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1E4D0, 0x1E4EA}, {0x2B739, 0x2B739}, {0x31350, 0x323AF}},
		"M":                    {{0xCF3, 0xCF3}, {0xECE, 0xECE}, {0x10EFD, 0x10EFF}, {0x11241, 0x11241}, {0x11F00, 0x11F01}, {0x11F03, 0x11F03}, {0x11F34, 0x11F3A}, {0x11F3E, 0x11F42}, {0x13440, 0x13440}, {0x13447, 0x13455}, {0x1E08F, 0x1E08F}, {0x1E4EC, 0x1E4EF}},
		"Mc":                   {{0xCF3, 0xCF3}, {0x11F03, 0x11F03}, {0x11F34, 0x11F35}, {0x11F3E, 0x11F3F}, {0x11F41, 0x11F41}},
		"Mn":                   {{0xECE, 0xECE}, {0x10EFD, 0x10EFF}, {0x11241, 0x11241}, {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40}, {0x11F42, 0x11F42}, {0x13440, 0x13440}, {0x13447, 0x13455}, {0x1E08F, 0x1E08F}, {0x1E4EC, 0x1E4EF}},
		"N":                    {{0x11F50, 0x11F59}, {0x1D2C0, 0x1D2D3}, {0x1E4F0, 0x1E4F9}},
		"Nd":                   {{0x11F50, 0x11F59}, {0x1E4F0, 0x1E4F9}},
		"No":                   {{0x1D2C0, 0x1D2D3}},
		"P":                    {{0x11B00, 0x11B09}, {0x11F43, 0x11F4F}},
		"Po":                   {{0x11B00, 0x11B09}, {0x11F43, 0x11F4F}},
		"S":                    {{0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABD}, {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB}, {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8}},
		"So":                   {{0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABD}, {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB}, {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8}},
	}
	// Unicode 15.1.0 (RE2 from 2023-11-01): runes RE2's tables have and Go's 15.0.0 do not.
	re2Unicode151Added = map[string][]re2Range{
		"Common": {{0x2FFC, 0x2FFF}, {0x31EF, 0x31EF}},
		"Han":    {{0x2EBF0, 0x2EE5D}},
		"L":      {{0x2EBF0, 0x2EE5D}},
		"Lo":     {{0x2EBF0, 0x2EE5D}},
		"S":      {{0x2FFC, 0x2FFF}, {0x31EF, 0x31EF}},
		"So":     {{0x2FFC, 0x2FFF}, {0x31EF, 0x31EF}},
	}
)

// unicodeGroup looks a \p name up the way LookupUnicodeGroup does, in the
// Unicode edition of st's RE2 release: Go's unicode package (15.0.0)
// corrected by the differences to RE2's tables of 14.0.0 or 15.1.0.
func (st *re2State) unicodeGroup(name string) ([]re2Range, bool) {
	if name == "Any" {
		return []re2Range{{0, re2Runemax}}, true
	}
	_, in14 := re2Unicode14Removed[name]
	_, in151 := re2Unicode151Added[name]
	if in14 || in151 || re2Scripts150[name] {
		st.divergent = true
	}
	if st.sem.unicode == re2Unicode140 && re2Scripts150[name] {
		return nil, false // no such script in Unicode 14.0.0
	}
	key := string(rune('0'+st.sem.unicode)) + name
	if v, ok := re2UnicodeGroupCache.Load(key); ok {
		return v.([]re2Range), true
	}
	var tabs []*unicode.RangeTable
	switch {
	case name == "C":
		// RE2's C is Cc|Cf|Co|Cs; Go's also holds the unassigned runes.
		tabs = []*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs}
	case re2Categories[name]:
		tabs = []*unicode.RangeTable{unicode.Categories[name]}
	case unicode.Scripts[name] != nil:
		tabs = []*unicode.RangeTable{unicode.Scripts[name]}
	default:
		return nil, false
	}
	c := &re2Class{}
	for _, tab := range tabs {
		c.addTable(tab)
	}
	switch rm := re2Unicode14Removed[name]; {
	case st.sem.unicode == re2Unicode151:
		for _, r := range re2Unicode151Added[name] {
			c.addRange(r.lo, r.hi)
		}
	case st.sem.unicode == re2Unicode140 && rm != nil:
		c.negate()
		for _, r := range rm {
			c.addRange(r.lo, r.hi)
		}
		c.negate()
	}
	re2UnicodeGroupCache.Store(key, c.r)
	return c.r, true
}

func (c *re2Class) addTable(tab *unicode.RangeTable) {
	for _, r := range tab.R16 {
		for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
			if r.Stride == 1 {
				c.addRange(rune(r.Lo), rune(r.Hi))
				break
			}
			c.addRange(x, x)
		}
	}
	for _, r := range tab.R32 {
		for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
			if r.Stride == 1 {
				c.addRange(rune(r.Lo), rune(r.Hi))
				break
			}
			c.addRange(x, x)
		}
	}
}

// addGroup is AddUGroup.
func (c *re2Class) addGroup(st *re2State, ranges []re2Range, sign int, flags re2Flags) {
	if sign > 0 {
		for _, r := range ranges {
			c.addRangeFlags(st, r.lo, r.hi, flags)
		}
		return
	}
	if flags&re2FoldCase != 0 {
		c1 := &re2Class{}
		c1.addGroup(st, ranges, +1, flags)
		if flags&re2ClassNL == 0 || flags&re2NeverNL != 0 {
			c1.addRange('\n', '\n')
		}
		c1.negate()
		c.addClass(c1)
		return
	}
	next := rune(0)
	for _, r := range ranges {
		if next < r.lo {
			c.addRangeFlags(st, next, r.lo-1, flags)
		}
		next = r.hi + 1
	}
	if next <= re2Runemax {
		c.addRangeFlags(st, next, re2Runemax, flags)
	}
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// The parse loop (Regexp::Parse) and its lexing helpers.

func (st *re2State) parse(s string, flags re2Flags) (*re2Node, error) {
	if !utf8.ValidString(s) {
		return nil, &re2ParseError{re2ErrBadUTF8, ""}
	}
	p := &re2Parser{st: st, flags: flags, whole: s}
	t := 0 // position in s
	lastUnary := -1
	for t < len(s) {
		isUnary := -1
		switch s[t] {
		default:
			r, n := utf8.DecodeRuneInString(s[t:])
			p.pushLiteral(r)
			t += n

		case '(':
			if p.flags&re2PerlX != 0 && t+1 < len(s) && s[t+1] == '?' {
				nt, err := p.parsePerlFlags(s, t)
				if err != nil {
					return nil, err
				}
				t = nt
				break
			}
			if p.flags&re2NeverCapture != 0 {
				p.doLeftParenNoCapture()
			} else {
				p.doLeftParen()
			}
			t++

		case '|':
			p.doVerticalBar()
			t++

		case ')':
			if err := p.doRightParen(); err != nil {
				return nil, err
			}
			t++

		case '^':
			p.pushCaret()
			t++

		case '$':
			p.pushDollar()
			t++

		case '.':
			p.pushDot()
			t++

		case '[':
			re, nt, err := p.parseCharClass(s, t)
			if err != nil {
				return nil, err
			}
			p.pushRegexp(re)
			t = nt

		case '*', '+', '?':
			op := map[byte]re2Op{'*': re2OpStar, '+': re2OpPlus, '?': re2OpQuest}[s[t]]
			opstart := t
			t++
			nongreedy := false
			if p.flags&re2PerlX != 0 {
				if t < len(s) && s[t] == '?' {
					nongreedy = true
					t++
				}
				if lastUnary >= 0 {
					return nil, &re2ParseError{re2ErrRepeatOp, s[lastUnary:t]}
				}
			}
			if err := p.pushRepeatOp(op, s[opstart:t], nongreedy); err != nil {
				return nil, err
			}
			isUnary = opstart

		case '{':
			opstart := t
			lo, hi, nt, ok := re2MaybeParseRepetition(s, t)
			if !ok {
				p.pushLiteral('{')
				t++
				break
			}
			t = nt
			nongreedy := false
			if p.flags&re2PerlX != 0 {
				if t < len(s) && s[t] == '?' {
					nongreedy = true
					t++
				}
				if lastUnary >= 0 {
					return nil, &re2ParseError{re2ErrRepeatOp, s[lastUnary:t]}
				}
			}
			if err := p.pushRepetition(lo, hi, s[opstart:t], nongreedy); err != nil {
				return nil, err
			}
			isUnary = opstart

		case '\\':
			nt, err := p.parseBackslash(s, t)
			if err != nil {
				return nil, err
			}
			t = nt
		}
		lastUnary = isUnary
	}
	return p.doFinish()
}

// parseBackslash handles the '\\' case of the parse loop.
func (p *re2Parser) parseBackslash(s string, t int) (int, error) {
	if p.flags&re2PerlB != 0 && t+1 < len(s) && (s[t+1] == 'b' || s[t+1] == 'B') {
		if s[t+1] == 'b' {
			p.pushSimpleOp(re2OpWordBoundary)
		} else {
			p.pushSimpleOp(re2OpNoWordBoundary)
		}
		return t + 2, nil
	}
	if p.flags&re2PerlX != 0 && t+1 < len(s) {
		switch s[t+1] {
		case 'A':
			p.pushSimpleOp(re2OpBeginText)
			return t + 2, nil
		case 'z':
			p.pushSimpleOp(re2OpEndText)
			return t + 2, nil
		case 'C':
			p.pushSimpleOp(re2OpAnyByte)
			return t + 2, nil
		case 'Q':
			t += 2
			for t < len(s) {
				if t+1 < len(s) && s[t] == '\\' && s[t+1] == 'E' {
					t += 2
					break
				}
				r, n := utf8.DecodeRuneInString(s[t:])
				p.pushLiteral(r)
				t += n
			}
			return t, nil
		}
	}
	if t+1 < len(s) && (s[t+1] == 'p' || s[t+1] == 'P') {
		re := p.newClass(p.flags &^ re2FoldCase)
		nt, err := p.st.parseUnicodeGroup(s, t, p.flags, re.cc)
		if err != nil {
			return 0, err
		}
		p.pushRegexp(re)
		return nt, nil
	}
	if t+1 < len(s) && p.flags&re2PerlClasses != 0 {
		if g, ok := re2PerlGroups[s[t:t+2]]; ok {
			re := p.newClass(p.flags &^ re2FoldCase)
			re.cc.addGroup(p.st, g.ranges, g.sign, p.flags)
			p.pushRegexp(re)
			return t + 2, nil
		}
	}
	r, nt, err := re2ParseEscape(s, t)
	if err != nil {
		return 0, err
	}
	p.pushLiteral(r)
	return nt, nil
}

// re2ParseInteger is ParseInteger: no leading zeros, fewer than 10 digits.
func re2ParseInteger(s string, t int) (n, nt int, ok bool) {
	if t >= len(s) || !re2IsDigit(s[t]) {
		return 0, t, false
	}
	if t+1 < len(s) && s[t] == '0' && re2IsDigit(s[t+1]) {
		return 0, t, false
	}
	for t < len(s) && re2IsDigit(s[t]) {
		if n >= 100000000 {
			return 0, t, false
		}
		n = n*10 + int(s[t]-'0')
		t++
	}
	return n, t, true
}

func re2IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// re2MaybeParseRepetition is MaybeParseRepetition: {n}, {n,} or {n,m}.
func re2MaybeParseRepetition(s string, t int) (lo, hi, nt int, ok bool) {
	t++ // '{'
	lo, t, ok = re2ParseInteger(s, t)
	if !ok || t >= len(s) {
		return 0, 0, 0, false
	}
	if s[t] == ',' {
		t++
		if t >= len(s) {
			return 0, 0, 0, false
		}
		if s[t] == '}' {
			hi = -1
		} else if hi, t, ok = re2ParseInteger(s, t); !ok {
			return 0, 0, 0, false
		}
	} else {
		hi = lo
	}
	if t >= len(s) || s[t] != '}' {
		return 0, 0, 0, false
	}
	return lo, hi, t + 1, true
}

func re2UnHex(c rune) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// re2ParseEscape is ParseEscape; s[t] is the backslash.
func re2ParseEscape(s string, t int) (rune, int, error) {
	begin := t
	if t+1 >= len(s) {
		return 0, 0, &re2ParseError{re2ErrTrailingBackslash, ""}
	}
	t++
	c, n := utf8.DecodeRuneInString(s[t:])
	t += n
	bad := func() (rune, int, error) {
		return 0, 0, &re2ParseError{re2ErrBadEscape, s[begin:t]}
	}
	switch {
	case c < utf8.RuneSelf && !re2IsAlnum(c):
		return c, t, nil
	case '1' <= c && c <= '7':
		// A single non-zero digit is a backreference; not supported.
		if t >= len(s) || s[t] < '0' || s[t] > '7' {
			return bad()
		}
		fallthrough
	case c == '0':
		code := c - '0'
		if t < len(s) && '0' <= s[t] && s[t] <= '7' {
			code = code*8 + rune(s[t]-'0')
			t++
			if t < len(s) && '0' <= s[t] && s[t] <= '7' {
				code = code*8 + rune(s[t]-'0')
				t++
			}
		}
		return code, t, nil
	case c == 'x':
		if t >= len(s) {
			return bad()
		}
		c, n = utf8.DecodeRuneInString(s[t:])
		t += n
		if c == '{' {
			if t >= len(s) {
				// RE2 fails to read a rune here.
				return 0, 0, &re2ParseError{re2ErrBadUTF8, ""}
			}
			c, n = utf8.DecodeRuneInString(s[t:])
			t += n
			nhex := 0
			code := rune(0)
			for {
				v, ok := re2UnHex(c)
				if !ok {
					break
				}
				nhex++
				code = code*16 + v
				if code > re2Runemax || t >= len(s) {
					return bad()
				}
				c, n = utf8.DecodeRuneInString(s[t:])
				t += n
			}
			if c != '}' || nhex == 0 {
				return bad()
			}
			return code, t, nil
		}
		if t >= len(s) {
			return bad()
		}
		c1, n1 := utf8.DecodeRuneInString(s[t:])
		t += n1
		v, ok := re2UnHex(c)
		v1, ok1 := re2UnHex(c1)
		if !ok || !ok1 {
			return bad()
		}
		return v*16 + v1, t, nil
	case c == 'n':
		return '\n', t, nil
	case c == 'r':
		return '\r', t, nil
	case c == 't':
		return '\t', t, nil
	case c == 'a':
		return '\a', t, nil
	case c == 'f':
		return '\f', t, nil
	case c == 'v':
		return '\v', t, nil
	}
	return bad()
}

func re2IsAlnum(c rune) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// re2ParseUnicodeGroup is ParseUnicodeGroup for \pX, \p{Name}, \p{^Name},
// \PX; s[t] is the backslash.
func (st *re2State) parseUnicodeGroup(s string, t int, flags re2Flags, cc *re2Class) (int, error) {
	seqStart := t
	sign := +1
	if s[t+1] == 'P' {
		sign = -1
	}
	t += 2
	var name string
	if t >= len(s) {
		// RE2 reads no rune and looks up an empty name.
		name = ""
	} else if c, n := utf8.DecodeRuneInString(s[t:]); c != '{' {
		name = s[t : t+n]
		t += n
	} else {
		end := -1
		for k := t + 1; k < len(s); k++ {
			if s[k] == '}' {
				end = k
				break
			}
		}
		if end < 0 {
			return 0, &re2ParseError{re2ErrBadCharRange, s[seqStart:]}
		}
		name = s[t+1 : end]
		t = end + 1
	}
	seq := s[seqStart:t]
	if len(name) > 0 && name[0] == '^' {
		sign = -sign
		name = name[1:]
	}
	ranges, ok := st.unicodeGroup(name)
	if !ok {
		return 0, &re2ParseError{re2ErrBadCharRange, seq}
	}
	cc.addGroup(st, ranges, sign, flags)
	return t, nil
}

// parseCharClass is ParseState::ParseCharClass; s[t] is the '['.
func (p *re2Parser) parseCharClass(s string, t int) (*re2Node, int, error) {
	whole := s[t:]
	re := p.newClass(p.flags &^ re2FoldCase)
	t++
	negated := false
	if t < len(s) && s[t] == '^' {
		t++
		negated = true
		if p.flags&re2ClassNL == 0 || p.flags&re2NeverNL != 0 {
			re.cc.addRange('\n', '\n')
		}
	}
	first := true
	for t < len(s) && (s[t] != ']' || first) {
		if s[t] == '-' && !first && p.flags&re2PerlX == 0 && (t+1 == len(s) || s[t+1] != ']') {
			_, n := utf8.DecodeRuneInString(s[t+1:])
			return nil, 0, &re2ParseError{re2ErrBadCharRange, s[t : t+1+n]}
		}
		first = false
		if len(s)-t > 2 && s[t] == '[' && s[t+1] == ':' {
			if end := re2FindPosixEnd(s, t); end > 0 {
				g, ok := re2PosixGroups[s[t:end]]
				if !ok {
					return nil, 0, &re2ParseError{re2ErrBadCharRange, s[t:end]}
				}
				re.cc.addGroup(p.st, g.ranges, g.sign, p.flags)
				t = end
				continue
			}
		}
		if len(s)-t > 2 && s[t] == '\\' && (s[t+1] == 'p' || s[t+1] == 'P') && p.flags&re2UnicodeGroups != 0 {
			nt, err := p.st.parseUnicodeGroup(s, t, p.flags, re.cc)
			if err != nil {
				return nil, 0, err
			}
			t = nt
			continue
		}
		if len(s)-t >= 2 && s[t] == '\\' && p.flags&re2PerlClasses != 0 {
			if g, ok := re2PerlGroups[s[t:t+2]]; ok {
				re.cc.addGroup(p.st, g.ranges, g.sign, p.flags)
				t += 2
				continue
			}
		}
		rangeStart := t
		lo, nt, err := p.parseCCCharacter(s, t, whole)
		if err != nil {
			return nil, 0, err
		}
		t = nt
		hi := lo
		if len(s)-t >= 2 && s[t] == '-' && s[t+1] != ']' {
			t++
			if hi, t, err = p.parseCCCharacter(s, t, whole); err != nil {
				return nil, 0, err
			}
			if hi < lo {
				return nil, 0, &re2ParseError{re2ErrBadCharRange, s[rangeStart:t]}
			}
		}
		re.cc.addRangeFlags(p.st, lo, hi, p.flags|re2ClassNL)
	}
	if t >= len(s) {
		return nil, 0, &re2ParseError{re2ErrMissingBracket, whole}
	}
	t++ // ']'
	if negated {
		re.cc.negate()
	}
	return re, t, nil
}

// re2FindPosixEnd returns the end of a "[:name:]" starting at s[t], or -1.
func re2FindPosixEnd(s string, t int) int {
	for q := t + 2; q+1 < len(s); q++ {
		if s[q] == ':' && s[q+1] == ']' {
			return q + 2
		}
	}
	return -1
}

func (p *re2Parser) parseCCCharacter(s string, t int, whole string) (rune, int, error) {
	if t >= len(s) {
		return 0, 0, &re2ParseError{re2ErrMissingBracket, whole}
	}
	if s[t] == '\\' {
		return re2ParseEscape(s, t)
	}
	r, n := utf8.DecodeRuneInString(s[t:])
	return r, t + n, nil
}

// re2ValidCaptureName is IsValidCaptureName.
func re2ValidCaptureName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo,
			unicode.Nl, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc) {
			return false
		}
	}
	return true
}

// parsePerlFlags is ParseState::ParsePerlFlags; s[t:] begins with "(?".
func (p *re2Parser) parsePerlFlags(s string, t int) (int, error) {
	start := t
	t += 2
	if len(s)-t > 2 && s[t] == 'P' && s[t+1] == '<' {
		end := -1
		for k := t + 2; k < len(s); k++ {
			if s[k] == '>' {
				end = k
				break
			}
		}
		if end < 0 {
			return 0, &re2ParseError{re2ErrBadNamedCapture, s[start:]}
		}
		name := s[t+2 : end]
		if !re2ValidCaptureName(name) {
			return 0, &re2ParseError{re2ErrBadNamedCapture, s[start : end+1]}
		}
		p.doLeftParen()
		return end + 1, nil
	}
	negated, sawFlags := false, false
	nflags := p.flags
	bad := func() (int, error) {
		return 0, &re2ParseError{re2ErrBadPerlOp, s[start:t]}
	}
	for {
		if t >= len(s) {
			return bad()
		}
		c, n := utf8.DecodeRuneInString(s[t:])
		t += n
		switch c {
		default:
			return bad()
		case 'i':
			sawFlags = true
			if negated {
				nflags &^= re2FoldCase
			} else {
				nflags |= re2FoldCase
			}
		case 'm': // opposite of OneLine
			sawFlags = true
			if negated {
				nflags |= re2OneLine
			} else {
				nflags &^= re2OneLine
			}
		case 's':
			sawFlags = true
			if negated {
				nflags &^= re2DotNL
			} else {
				nflags |= re2DotNL
			}
		case 'U':
			sawFlags = true
			if negated {
				nflags &^= re2NonGreedy
			} else {
				nflags |= re2NonGreedy
			}
		case '-':
			if negated {
				return bad()
			}
			negated = true
			sawFlags = false
		case ':', ')':
			if negated && !sawFlags {
				return bad()
			}
			if c == ':' {
				p.doLeftParenNoCapture()
			}
			p.flags = nflags
			return t, nil
		}
	}
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// Compiler (re2/compile.cc).

const (
	re2InstAlt uint8 = iota
	re2InstAltMatch
	re2InstByteRange
	re2InstCapture
	re2InstEmptyWidth
	re2InstMatch
	re2InstNop
	re2InstFail
)

type re2Inst struct {
	op     uint8
	out    uint32
	out1   uint32
	lo, hi uint8
	fold   bool
}

type re2PatchList struct{ head, tail uint32 }

type re2Frag struct {
	begin    uint32
	end      re2PatchList
	nullable bool
}

type re2CacheKey struct {
	lo, hi uint8
	fold   bool
	next   int
}

type re2Compiler struct {
	inst      []re2Inst
	ninst     int
	maxNinst  int
	failed    bool
	visits    int
	runeCache map[re2CacheKey]int
	runeRange re2Frag
}

func (c *re2Compiler) patch(l re2PatchList, p uint32) {
	for l.head != 0 {
		ip := &c.inst[l.head>>1]
		if l.head&1 != 0 {
			l.head = ip.out1
			ip.out1 = p
		} else {
			l.head = ip.out
			ip.out = p
		}
	}
}

func (c *re2Compiler) appendList(l1, l2 re2PatchList) re2PatchList {
	if l1.head == 0 {
		return l2
	}
	if l2.head == 0 {
		return l1
	}
	ip := &c.inst[l1.tail>>1]
	if l1.tail&1 != 0 {
		ip.out1 = l2.head
	} else {
		ip.out = l2.head
	}
	return re2PatchList{l1.head, l2.tail}
}

func (c *re2Compiler) allocInst(n int) int {
	if c.failed || c.ninst+n > c.maxNinst {
		c.failed = true
		return -1
	}
	for len(c.inst) < c.ninst+n {
		c.inst = append(c.inst, re2Inst{})
	}
	id := c.ninst
	for i := id; i < id+n; i++ {
		c.inst[i] = re2Inst{}
	}
	c.ninst += n
	return id
}

func re2IsNoMatch(f re2Frag) bool { return f.begin == 0 }

func re2Mk(p uint32) re2PatchList { return re2PatchList{p, p} }

func (c *re2Compiler) cat(a, b re2Frag) re2Frag {
	if re2IsNoMatch(a) || re2IsNoMatch(b) {
		return re2Frag{}
	}
	if begin := &c.inst[a.begin]; begin.op == re2InstNop && a.end.head == a.begin<<1 && begin.out == 0 {
		c.patch(a.end, b.begin)
		return b
	}
	c.patch(a.end, b.begin)
	return re2Frag{a.begin, b.end, a.nullable && b.nullable}
}

func (c *re2Compiler) alt(a, b re2Frag) re2Frag {
	if re2IsNoMatch(a) {
		return b
	}
	if re2IsNoMatch(b) {
		return a
	}
	id := c.allocInst(1)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstAlt, out: a.begin, out1: b.begin}
	return re2Frag{uint32(id), c.appendList(a.end, b.end), a.nullable || b.nullable}
}

// loop builds the Alt of *, + and ? and returns its id and out list.
func (c *re2Compiler) loopAlt(a re2Frag, nongreedy bool) (uint32, re2PatchList, bool) {
	id := c.allocInst(1)
	if id < 0 {
		return 0, re2PatchList{}, false
	}
	u := uint32(id)
	if nongreedy {
		c.inst[id] = re2Inst{op: re2InstAlt, out1: a.begin}
		return u, re2Mk(u << 1), true
	}
	c.inst[id] = re2Inst{op: re2InstAlt, out: a.begin}
	return u, re2Mk(u<<1 | 1), true
}

func (c *re2Compiler) plus(a re2Frag, nongreedy bool) re2Frag {
	id, pl, ok := c.loopAlt(a, nongreedy)
	if !ok {
		return re2Frag{}
	}
	c.patch(a.end, id)
	return re2Frag{a.begin, pl, a.nullable}
}

func (c *re2Compiler) star(a re2Frag, nongreedy bool) re2Frag {
	if a.nullable {
		return c.quest(c.plus(a, nongreedy), nongreedy)
	}
	id, pl, ok := c.loopAlt(a, nongreedy)
	if !ok {
		return re2Frag{}
	}
	c.patch(a.end, id)
	return re2Frag{id, pl, true}
}

func (c *re2Compiler) quest(a re2Frag, nongreedy bool) re2Frag {
	if re2IsNoMatch(a) {
		return c.nop()
	}
	id, pl, ok := c.loopAlt(a, nongreedy)
	if !ok {
		return re2Frag{}
	}
	return re2Frag{id, c.appendList(pl, a.end), true}
}

func (c *re2Compiler) byteRange(lo, hi int, fold bool) re2Frag {
	id := c.allocInst(1)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstByteRange, lo: uint8(lo), hi: uint8(hi), fold: fold}
	return re2Frag{uint32(id), re2Mk(uint32(id) << 1), false}
}

func (c *re2Compiler) nop() re2Frag {
	id := c.allocInst(1)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstNop}
	return re2Frag{uint32(id), re2Mk(uint32(id) << 1), true}
}

func (c *re2Compiler) match() re2Frag {
	id := c.allocInst(1)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstMatch}
	return re2Frag{begin: uint32(id)}
}

func (c *re2Compiler) emptyWidth() re2Frag {
	id := c.allocInst(1)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstEmptyWidth}
	return re2Frag{uint32(id), re2Mk(uint32(id) << 1), true}
}

func (c *re2Compiler) capture(a re2Frag) re2Frag {
	if re2IsNoMatch(a) {
		return re2Frag{}
	}
	id := c.allocInst(2)
	if id < 0 {
		return re2Frag{}
	}
	c.inst[id] = re2Inst{op: re2InstCapture, out: a.begin}
	c.inst[id+1] = re2Inst{op: re2InstCapture}
	c.patch(a.end, uint32(id+1))
	return re2Frag{uint32(id), re2Mk(uint32(id+1) << 1), a.nullable}
}

// Rune ranges to UTF-8 byte-range tries.

func (c *re2Compiler) beginRange() {
	c.runeCache = map[re2CacheKey]int{}
	c.runeRange = re2Frag{}
}

func (c *re2Compiler) uncachedRuneByteSuffix(lo, hi uint8, fold bool, next int) int {
	f := c.byteRange(int(lo), int(hi), fold)
	if next != 0 {
		c.patch(f.end, uint32(next))
	} else {
		c.runeRange.end = c.appendList(c.runeRange.end, f.end)
	}
	return int(f.begin)
}

func (c *re2Compiler) cachedRuneByteSuffix(lo, hi uint8, fold bool, next int) int {
	key := re2CacheKey{lo, hi, fold, next}
	if id, ok := c.runeCache[key]; ok {
		return id
	}
	id := c.uncachedRuneByteSuffix(lo, hi, fold, next)
	c.runeCache[key] = id
	return id
}

func (c *re2Compiler) isCachedRuneByteSuffix(id int) bool {
	ip := &c.inst[id]
	_, ok := c.runeCache[re2CacheKey{ip.lo, ip.hi, ip.fold, int(ip.out)}]
	return ok
}

func (c *re2Compiler) addSuffix(id int) {
	if c.failed {
		return
	}
	if c.runeRange.begin == 0 {
		c.runeRange.begin = uint32(id)
		return
	}
	c.runeRange.begin = uint32(c.addSuffixRecursive(int(c.runeRange.begin), id))
}

func (c *re2Compiler) addSuffixRecursive(root, id int) int {
	f := c.findByteRange(root, id)
	if re2IsNoMatch(f) {
		alt := c.allocInst(1)
		if alt < 0 {
			return 0
		}
		c.inst[alt] = re2Inst{op: re2InstAlt, out: uint32(root), out1: uint32(id)}
		return alt
	}
	var br int
	switch {
	case f.end.head == 0:
		br = root
	case f.end.head&1 != 0:
		br = int(c.inst[f.begin].out1)
	default:
		br = int(c.inst[f.begin].out)
	}
	if c.isCachedRuneByteSuffix(br) {
		// A cached suffix cannot be changed: clone its head.
		byterange := c.allocInst(1)
		if byterange < 0 {
			return 0
		}
		c.inst[byterange] = re2Inst{op: re2InstByteRange, lo: c.inst[br].lo, hi: c.inst[br].hi, fold: c.inst[br].fold, out: c.inst[br].out}
		br = byterange
		switch {
		case f.end.head == 0:
			root = br
		case f.end.head&1 != 0:
			c.inst[f.begin].out1 = uint32(br)
		default:
			c.inst[f.begin].out = uint32(br)
		}
	}
	out := int(c.inst[id].out)
	if !c.isCachedRuneByteSuffix(id) {
		// The head is the instruction allocated last: free it.
		c.inst[id] = re2Inst{}
		c.ninst--
	}
	out = c.addSuffixRecursive(int(c.inst[br].out), out)
	if out == 0 {
		return 0
	}
	c.inst[br].out = uint32(out)
	return root
}

func (c *re2Compiler) byteRangeEqual(id1, id2 int) bool {
	a, b := &c.inst[id1], &c.inst[id2]
	return a.lo == b.lo && a.hi == b.hi && a.fold == b.fold
}

func (c *re2Compiler) findByteRange(root, id int) re2Frag {
	if c.inst[root].op == re2InstByteRange {
		if c.byteRangeEqual(root, id) {
			return re2Frag{begin: uint32(root)}
		}
		return re2Frag{}
	}
	if c.inst[root].op == re2InstAlt {
		out1 := int(c.inst[root].out1)
		if c.byteRangeEqual(out1, id) {
			return re2Frag{begin: uint32(root), end: re2Mk(uint32(root)<<1 | 1)}
		}
		// Forward mode: the class is sorted, so the search stops here.
	}
	return re2Frag{}
}

func re2RuneToChar(buf *[4]byte, r rune) int {
	x := uint32(r)
	if x <= 0x7F {
		buf[0] = byte(x)
		return 1
	}
	if x <= 0x7FF {
		buf[0] = 0xC0 | byte(x>>6)
		buf[1] = 0x80 | byte(x&0x3F)
		return 2
	}
	if x > re2Runemax {
		x = 0xFFFD
	}
	if x <= 0xFFFF {
		buf[0] = 0xE0 | byte(x>>12)
		buf[1] = 0x80 | byte(x>>6&0x3F)
		buf[2] = 0x80 | byte(x&0x3F)
		return 3
	}
	buf[0] = 0xF0 | byte(x>>18)
	buf[1] = 0x80 | byte(x>>12&0x3F)
	buf[2] = 0x80 | byte(x>>6&0x3F)
	buf[3] = 0x80 | byte(x&0x3F)
	return 4
}

func re2MaxRuneOfLen(n int) rune {
	if n == 1 {
		return 1<<7 - 1
	}
	b := 8 - (n + 1) + 6*(n-1)
	return 1<<b - 1
}

func (c *re2Compiler) add80To10FFFF() {
	cont1 := c.uncachedRuneByteSuffix(0x80, 0xBF, false, 0)
	c.addSuffix(c.uncachedRuneByteSuffix(0xC2, 0xDF, false, cont1))
	cont2 := c.uncachedRuneByteSuffix(0x80, 0xBF, false, cont1)
	c.addSuffix(c.uncachedRuneByteSuffix(0xE0, 0xEF, false, cont2))
	cont3 := c.uncachedRuneByteSuffix(0x80, 0xBF, false, cont2)
	c.addSuffix(c.uncachedRuneByteSuffix(0xF0, 0xF4, false, cont3))
}

func (c *re2Compiler) addRuneRange(lo, hi rune, fold bool) {
	if lo > hi {
		return
	}
	if lo == 0x80 && hi == 0x10FFFF {
		c.add80To10FFFF()
		return
	}
	for i := 1; i < 4; i++ {
		m := re2MaxRuneOfLen(i)
		if lo <= m && m < hi {
			c.addRuneRange(lo, m, fold)
			c.addRuneRange(m+1, hi, fold)
			return
		}
	}
	if hi < utf8.RuneSelf {
		c.addSuffix(c.uncachedRuneByteSuffix(uint8(lo), uint8(hi), fold, 0))
		return
	}
	for i := 1; i < 4; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				c.addRuneRange(lo, lo|m, fold)
				c.addRuneRange((lo|m)+1, hi, fold)
				return
			}
			if hi&m != m {
				c.addRuneRange(lo, (hi&^m)-1, fold)
				c.addRuneRange(hi&^m, hi, fold)
				return
			}
		}
	}
	var ulo, uhi [4]byte
	n := re2RuneToChar(&ulo, lo)
	re2RuneToChar(&uhi, hi)
	id := 0
	for i := n - 1; i >= 0; i-- {
		if i == n-1 || (ulo[i] < uhi[i] && i != 0) {
			id = c.cachedRuneByteSuffix(ulo[i], uhi[i], false, id)
		} else {
			id = c.uncachedRuneByteSuffix(ulo[i], uhi[i], false, id)
		}
	}
	c.addSuffix(id)
}

func (c *re2Compiler) literal(r rune, fold bool) re2Frag {
	if r < utf8.RuneSelf {
		return c.byteRange(int(r), int(r), fold)
	}
	var buf [4]byte
	n := re2RuneToChar(&buf, r)
	f := c.byteRange(int(buf[0]), int(buf[0]), false)
	for i := 1; i < n; i++ {
		f = c.cat(f, c.byteRange(int(buf[i]), int(buf[i]), false))
	}
	return f
}

// walk is the compiler's WalkExponential: every node is compiled again for
// each place it appears, within a budget of visits.
func (c *re2Compiler) walk(re *re2Node) re2Frag {
	if c.visits--; c.visits < 0 {
		c.failed = true
		return re2Frag{}
	}
	if c.failed {
		return re2Frag{}
	}
	child := make([]re2Frag, len(re.sub))
	for i, s := range re.sub {
		child[i] = c.walk(s)
	}
	if c.failed {
		return re2Frag{}
	}
	nongreedy := re.flags&re2NonGreedy != 0
	switch re.op {
	case re2OpNoMatch:
		return re2Frag{}
	case re2OpEmptyMatch:
		return c.nop()
	case re2OpHaveMatch:
		return c.match()
	case re2OpConcat:
		f := child[0]
		for _, g := range child[1:] {
			f = c.cat(f, g)
		}
		return f
	case re2OpAlternate:
		f := child[0]
		for _, g := range child[1:] {
			f = c.alt(f, g)
		}
		return f
	case re2OpStar:
		return c.star(child[0], nongreedy)
	case re2OpPlus:
		return c.plus(child[0], nongreedy)
	case re2OpQuest:
		return c.quest(child[0], nongreedy)
	case re2OpLiteral:
		return c.literal(re.r, re.flags&re2FoldCase != 0)
	case re2OpLiteralString:
		if len(re.runes) == 0 {
			return c.nop()
		}
		var f re2Frag
		for i, r := range re.runes {
			f1 := c.literal(r, re.flags&re2FoldCase != 0)
			if i == 0 {
				f = f1
			} else {
				f = c.cat(f, f1)
			}
		}
		return f
	case re2OpAnyChar:
		c.beginRange()
		c.addRuneRange(0, re2Runemax, false)
		return c.runeRange
	case re2OpAnyByte:
		return c.byteRange(0x00, 0xFF, false)
	case re2OpCharClass:
		if len(re.cc.r) == 0 {
			c.failed = true
			return re2Frag{}
		}
		foldascii := re.cc.foldsASCII()
		c.beginRange()
		for _, r := range re.cc.r {
			if foldascii && 'A' <= r.lo && r.hi <= 'Z' {
				continue
			}
			fold := foldascii
			if (r.lo <= 'A' && 'z' <= r.hi) || r.hi < 'A' || 'z' < r.lo || ('Z' < r.lo && r.hi < 'a') {
				fold = false
			}
			c.addRuneRange(r.lo, r.hi, fold)
		}
		return c.runeRange
	case re2OpCapture:
		if re.cap < 0 {
			return child[0]
		}
		return c.capture(child[0])
	case re2OpBeginLine, re2OpEndLine, re2OpBeginText, re2OpEndText, re2OpWordBoundary, re2OpNoWordBoundary:
		return c.emptyWidth()
	}
	c.failed = true
	return re2Frag{}
}

var errRE2TooLarge = errors.New(re2ErrPatternTooLarge)

// compile is Compiler::Compile for the forward program, followed by
// Prog::Optimize and the size of Prog::Flatten's result.
func (st *re2State) compile(re *re2Node) (int, error) {
	w := &re2Walk{st: st, budget: re2WalkBudget}
	cre := w.coalesce(re)
	if w.stopped {
		return 0, errRE2TooLarge
	}
	w.budget = re2WalkBudget
	sre := w.simplify(cre)
	if w.stopped {
		return 0, errRE2TooLarge
	}
	anchorStart := st.isAnchor(&sre, 0, true)
	st.isAnchor(&sre, 0, false)

	c := &re2Compiler{maxNinst: 1}
	c.allocInst(1)
	c.inst[0] = re2Inst{op: re2InstFail}
	c.maxNinst = re2MaxInstructions
	c.visits = 2 * c.maxNinst

	all := c.walk(sre)
	if c.failed {
		return 0, errRE2TooLarge
	}
	all = c.cat(all, c.match())
	start := all.begin
	if !anchorStart {
		// The .*? loop of unanchored search.
		all = c.cat(c.star(c.byteRange(0x00, 0xFF, false), true), all)
	}
	startUnanchored := all.begin
	if c.failed {
		return 0, errRE2TooLarge
	}
	if start == 0 && startUnanchored == 0 {
		c.ninst = 1
	}
	prog := c.inst[:c.ninst]
	re2Optimize(prog, start)
	return re2FlattenSize(prog, int(start), int(startUnanchored)), nil
}

// ---------------------------------------------------------------------------
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
