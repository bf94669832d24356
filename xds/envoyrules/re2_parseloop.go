package envoyrules

import (
	"unicode"
	"unicode/utf8"
)

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
