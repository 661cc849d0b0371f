package statuspage

import (
	"errors"
	"testing"
)

func TestCursor(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Cursor
		wantErr bool
	}{
		{name: "every stream", in: "v1.a2.d3.o4.s5.c6", want: Cursor{1, 2, 3, 4, 5, 6}},
		{name: "any order", in: "c6.s5.o4.d3.a2.v1", want: Cursor{1, 2, 3, 4, 5, 6}},
		{name: "zeros", in: "v0.a0.d0.o0.s0.c0", want: Cursor{}},
		{name: "a stream missing", in: "v1.a2.d3.o4.s5", wantErr: true},
		{name: "a stream twice", in: "v1.v2.d3.o4.s5.c6", wantErr: true},
		{name: "an unknown stream", in: "x1.a2.d3.o4.s5.c6", wantErr: true},
		{name: "a negative sequence", in: "v-1.a2.d3.o4.s5.c6", wantErr: true},
		{name: "no sequence", in: "v.a2.d3.o4.s5.c6", wantErr: true},
		{name: "an empty part", in: "v1..d3.o4.s5.c6", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCursor(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadCursor) {
					t.Errorf("got %v, %v; want ErrBadCursor", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if back, err := ParseCursor(got.String()); err != nil || back != got {
				t.Errorf("%s does not read back: %v, %v", got, back, err)
			}
		})
	}
}
