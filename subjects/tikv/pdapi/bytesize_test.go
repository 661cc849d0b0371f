package pdapi_test

import (
	"encoding/json"
	"testing"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestParseByteSize(t *testing.T) {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
		tib = 1 << 40
	)
	tests := []struct {
		in   string
		want uint64
	}{
		{"0B", 0},
		{"0", 0},
		{"512B", 512},
		{"1KiB", kib},
		{"1.5KiB", 1536},
		{"512MiB", 512 * mib},
		{"310.6MiB", 325687706}, // 310.6 × 2^20, rounded
		{"49.98GiB", 53665616364},
		{"58.42GiB", 62727997358},
		{"1.5TiB", 3 * tib / 2},
		{"2PiB", 2 << 50},
		{"1EiB", 1 << 60},
		{"49 GiB", 49 * gib}, // older PD (go-humanize) put a space before the unit
		{"1 KiB", kib},
		{"1gib", gib}, // case-insensitive
		{"1G", gib},   // RAMInBytes: every unit is binary
		{"1GB", gib},
		{"1k", kib},
		{"1e3B", 1000},
		{"  7MiB ", 7 * mib},
		{"1024", 1024},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := pdapi.ParseByteSize(tc.in)
			if err != nil {
				t.Fatalf("ParseByteSize(%q): %v", tc.in, err)
			}
			if uint64(got) != tc.want {
				t.Fatalf("ParseByteSize(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseByteSizeRejects(t *testing.T) {
	for _, in := range []string{"", "GiB", "abc", "-1B", "1.5XiB", "1 2GiB", "NaNB", "20EiB" /* > 2^64 */} {
		t.Run(in, func(t *testing.T) {
			if got, err := pdapi.ParseByteSize(in); err == nil {
				t.Fatalf("ParseByteSize(%q) = %d, want an error", in, got)
			}
		})
	}
}

// TestByteSizeString checks the formatter against sizes PD prints
// (units.BytesSize: "%.4g" and a binary unit).
func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{1536, "1.5KiB"},
		{512 << 20, "512MiB"},
		{325687706, "310.6MiB"},
		{53665616364, "49.98GiB"},
		{62727997358, "58.42GiB"},
		{3 << 39, "1.5TiB"},
		{(1 << 20) - 1, "1024KiB"}, // 1023.999KiB rounds to 4 digits
	}
	for _, tc := range tests {
		if got := pdapi.ByteSize(tc.in).String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestByteSizeJSON(t *testing.T) {
	var v struct {
		A pdapi.ByteSize `json:"a"`
		B pdapi.ByteSize `json:"b"`
		C pdapi.ByteSize `json:"c"`
	}
	if err := json.Unmarshal([]byte(`{"a":"49.98GiB","b":4096,"c":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 53665616364 || v.B != 4096 || v.C != 0 {
		t.Fatalf("decoded %+v", v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"49.98GiB","b":"4KiB","c":"0B"}`; string(out) != want {
		t.Fatalf("encoded %s, want %s", out, want)
	}
	if err := json.Unmarshal([]byte(`{"a":"lots"}`), &v); err == nil {
		t.Fatal("decoding \"lots\" succeeded, want an error")
	}
}
