package envoyrules

import (
	"sort"
	"sync"
	"unicode"
)

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
