package envoyrules

// This file ports the part of RE2 (github.com/google/re2, the C++ library
// Envoy uses for every google_re2 / safe_regex matcher) that decides a
// regex's program size. See RE2ProgramSize.

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
