package envoyrules

import (
	"errors"
	"unicode/utf8"
)

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
