package auth

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/rangetable"
)

// saslPrep prepares a SCRAM password with SASLprep (RFC 4013) the way PostgreSQL does
// (pg_saslprep): if the password is not valid UTF-8, or SASLprep prohibits it, the
// password is used as it is.
//
// Two tables differ slightly from Unicode 3.2, which RFC 3454 uses: normalization and
// bidirectional classes come from the Unicode version of golang.org/x/text, and
// "unassigned" means not assigned in Unicode 4.1, the oldest version it has tables
// for. Passwords of printable ASCII, by far the most common, are unaffected.
func saslPrep(password string) string {
	if isPrintableASCII(password) || !utf8.ValidString(password) {
		return password
	}
	mapped := make([]rune, 0, len(password))
	for _, r := range password {
		switch {
		case unicode.Is(nonASCIISpace, r):
			mapped = append(mapped, ' ')
		case unicode.Is(mappedToNothing, r):
		default:
			mapped = append(mapped, r)
		}
	}
	prepared := norm.NFKC.String(string(mapped))
	if prepared == "" || prohibited(prepared) || !bidiOK(prepared) {
		return password
	}
	return prepared
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

var assigned = rangetable.Assigned("4.1.0")

// prohibited reports whether s holds a character of RFC 3454 tables C.1.2 and C.2.1
// to C.9, or an unassigned one (A.1).
func prohibited(s string) bool {
	for _, r := range s {
		if unicode.Is(prohibitedChars, r) || r&0xfffe == 0xfffe || !unicode.Is(assigned, r) {
			return true
		}
	}
	return false
}

// bidiOK applies RFC 3454 section 6: a string with right-to-left characters must not
// contain left-to-right ones, and must begin and end with right-to-left ones.
func bidiOK(s string) bool {
	var hasRAL, hasL bool
	for _, r := range s {
		switch class(r) {
		case bidi.R, bidi.AL:
			hasRAL = true
		case bidi.L:
			hasL = true
		}
	}
	if !hasRAL {
		return true
	}
	if hasL {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	isRAL := func(r rune) bool { c := class(r); return c == bidi.R || c == bidi.AL }
	return isRAL(first) && isRAL(last)
}

func class(r rune) bidi.Class {
	p, _ := bidi.LookupRune(r)
	return p.Class()
}

// nonASCIISpace is RFC 3454 table C.1.2 as PostgreSQL maps it to SPACE.
var nonASCIISpace = &unicode.RangeTable{R16: []unicode.Range16{
	{0x00a0, 0x00a0, 1}, {0x1680, 0x1680, 1}, {0x2000, 0x200b, 1},
	{0x202f, 0x202f, 1}, {0x205f, 0x205f, 1}, {0x3000, 0x3000, 1},
}}

// mappedToNothing is RFC 3454 table B.1.
var mappedToNothing = &unicode.RangeTable{R16: []unicode.Range16{
	{0x00ad, 0x00ad, 1}, {0x034f, 0x034f, 1}, {0x1806, 0x1806, 1}, {0x180b, 0x180d, 1},
	{0x200b, 0x200d, 1}, {0x2060, 0x2060, 1}, {0xfe00, 0xfe0f, 1}, {0xfeff, 0xfeff, 1},
}}

// prohibitedChars is RFC 3454 tables C.1.2, C.2.1, C.2.2, C.3, C.4 (except the last
// two code points of each plane, checked separately), C.5, C.6, C.7, C.8 and C.9.
var prohibitedChars = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0000, 0x001f, 1}, {0x007f, 0x00a0, 1}, {0x0340, 0x0341, 1}, {0x06dd, 0x06dd, 1},
		{0x070f, 0x070f, 1}, {0x1680, 0x1680, 1}, {0x180e, 0x180e, 1}, {0x2000, 0x200f, 1},
		{0x2028, 0x202f, 1}, {0x205f, 0x2063, 1}, {0x206a, 0x206f, 1}, {0x2ff0, 0x2ffb, 1},
		{0x3000, 0x3000, 1}, {0xd800, 0xf8ff, 1}, {0xfdd0, 0xfdef, 1}, {0xfeff, 0xfeff, 1},
		{0xfff9, 0xfffd, 1},
	},
	R32: []unicode.Range32{
		{0x1d173, 0x1d17a, 1}, {0xe0001, 0xe0001, 1}, {0xe0020, 0xe007f, 1},
		{0xf0000, 0xffffd, 1}, {0x100000, 0x10fffd, 1},
	},
}
