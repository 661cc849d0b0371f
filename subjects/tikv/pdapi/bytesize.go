package pdapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. PD writes store sizes as humanised strings
// ("49.98GiB", "0B", "310.6MiB"): the value divided by 1024 until it is below
// 1024, printed with 4 significant digits, and a binary unit (typeutil.ByteSize
// → units.BytesSize). So a parsed size is exact only to about 4 digits.
// Older PD versions printed "49 GiB" (with a space); that parses too.
type ByteSize uint64

// binaryUnits are the unit suffixes PD prints, in order of 1024^i.
var binaryUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// ParseByteSize parses a humanised size as PD's typeutil.ByteSize does
// (units.RAMInBytes): a number, optional spaces, and an optional unit, all
// units binary and case-insensitive: B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
// T/TB/TiB, P/PB/PiB, E/EB/EiB. A bare number is bytes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	n := numberPrefix(t)
	if n == 0 {
		return 0, fmt.Errorf("pdapi: invalid size %q: no number", s)
	}
	v, err := strconv.ParseFloat(t[:n], 64)
	if err != nil {
		return 0, fmt.Errorf("pdapi: invalid size %q: %w", s, err)
	}
	mult, ok := unitMultiplier(strings.TrimSpace(t[n:]))
	if !ok {
		return 0, fmt.Errorf("pdapi: invalid size %q: unknown unit %q", s, strings.TrimSpace(t[n:]))
	}
	bytes := math.Round(v * mult)
	if v < 0 || math.IsNaN(bytes) || bytes >= math.MaxUint64 {
		return 0, fmt.Errorf("pdapi: invalid size %q: out of range", s)
	}
	return ByteSize(bytes), nil
}

// numberPrefix returns the length of the decimal number at the start of s:
// digits, one '.', and an exponent only when digits follow it (so the "E"
// of "EiB" is left for the unit).
func numberPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
		if isDigit(s[i]) {
			digits++
		}
		i++
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func unitMultiplier(unit string) (float64, bool) {
	u := strings.ToLower(unit)
	if u == "" || u == "b" {
		return 1, true
	}
	for i, full := range binaryUnits[1:] {
		f := strings.ToLower(full) // kib, mib, ...
		if u == f || u == f[:1] || u == f[:1]+"b" {
			return math.Pow(1024, float64(i+1)), true
		}
	}
	return 0, false
}

// String formats the size as PD does ("%.4g" and a binary unit), e.g.
// "49.98GiB", "0B", "1.5TiB".
func (b ByteSize) String() string {
	size := float64(b)
	i := 0
	for size >= 1024 && i < len(binaryUnits)-1 {
		size /= 1024
		i++
	}
	return strconv.FormatFloat(size, 'g', 4, 64) + binaryUnits[i]
}

// MarshalJSON writes the size as PD does: a humanised JSON string.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	return json.Marshal(b.String())
}

// UnmarshalJSON reads a humanised JSON string ("49.98GiB") or a plain JSON
// number of bytes. null leaves the size unchanged.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
