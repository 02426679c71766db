package pgini

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// parseCInt parses an integer the way C's strtol with base 0 does: an
// optional sign, then "0x" for hex, a leading "0" for octal, or decimal.
// Unlike PgBouncer it refuses values outside [lo, hi] instead of truncating.
func parseCInt(s string, lo, hi int64) (int64, error) {
	body := s
	neg := false
	if body != "" && (body[0] == '+' || body[0] == '-') {
		neg = body[0] == '-'
		body = body[1:]
	}
	base := 10
	switch {
	case len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X'):
		base, body = 16, body[2:]
	case len(body) > 1 && body[0] == '0':
		base, body = 8, body[1:]
	}
	if body == "" || strings.ContainsAny(body, "_+-") {
		return 0, invalidf("not an integer")
	}
	u, err := strconv.ParseUint(body, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, invalidf("out of range [%d, %d]", lo, hi)
		}
		return 0, invalidf("not an integer")
	}
	if u > math.MaxInt64 {
		return 0, invalidf("out of range [%d, %d]", lo, hi)
	}
	v := int64(u)
	if neg {
		v = -v
	}
	if v < lo || v > hi {
		return 0, invalidf("out of range [%d, %d]", lo, hi)
	}
	return v, nil
}

// parseDecimal parses a plain decimal integer in [lo, hi]: the form used by
// pool sizes and ports in connection strings.
func parseDecimal(s string, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, invalidf("out of range [%d, %d]", lo, hi)
		}
		return 0, invalidf("not a decimal integer")
	}
	if v < lo || v > hi {
		return 0, invalidf("out of range [%d, %d]", lo, hi)
	}
	return v, nil
}

// parseSeconds parses a time setting: a non-negative number of seconds,
// possibly fractional ("0.5", "1e3"), without a unit, as PgBouncer's
// CF_TIME_USEC settings. The result is rounded down to a microsecond.
func parseSeconds(s string) (time.Duration, error) {
	if s == "" || strings.ContainsAny(s, "xXpP_") {
		return 0, invalidf("not a number of seconds")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, invalidf("too large")
		}
		if unitSuffix(s) {
			return 0, invalidf("time values are seconds, without a unit")
		}
		return 0, invalidf("not a number of seconds")
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, invalidf("not a finite number of seconds")
	case f < 0:
		return 0, invalidf("must not be negative")
	case f*1e6 >= float64(math.MaxInt64/int64(time.Microsecond)):
		return 0, invalidf("too large")
	}
	return time.Duration(int64(f*1e6)) * time.Microsecond, nil
}

// unitSuffix reports whether s looks like a number followed by a unit.
func unitSuffix(s string) bool {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
	if i <= 0 {
		return false
	}
	_, err := strconv.ParseFloat(strings.TrimSpace(s[:i]), 64)
	return err == nil
}

// splitList splits a PgBouncer list setting on commas and white space,
// dropping empty items.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
	if len(f) == 0 {
		return nil
	}
	return f
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// trimSpace trims C white space from both ends.
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}
