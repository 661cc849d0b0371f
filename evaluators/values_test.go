package evaluators

import (
	"math"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

func TestKeyString(t *testing.T) {
	tests := []struct {
		name    string
		v       ref.Val
		want    string
		wantErr bool
	}{
		{name: "string", v: types.String("n1"), want: "n1"},
		{name: "integral double", v: types.Double(3), want: "3"},
		{name: "fraction", v: types.Double(1.5), want: "1.5"},
		{name: "negative zero is zero", v: types.Double(math.Copysign(0, -1)), want: "0"},
		{name: "int", v: types.Int(-7), want: "-7"},
		{name: "uint", v: types.Uint(7), want: "7"},
		{name: "bool", v: types.True, want: "true"},
		{name: "null", v: types.NullValue, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyString(tt.v)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("keyString(%v) = %q, %v; want %q (error %v)", tt.v, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
