package schemas

import (
	"errors"
	"fmt"
	"testing"
)

func TestFormatParams(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"none", nil, ""},
		{"keys in order, plain strings bare", map[string]any{"pattern": "burst:1", "algorithm": "gcra"}, "{algorithm=gcra pattern=burst:1}"},
		{"numbers and bools are JSON", map[string]any{"limit": 50, "ratio": 0.5, "force": true}, "{force=true limit=50 ratio=0.5}"},
		{"a string that reads as a number is quoted", map[string]any{"store_id": "4"}, `{store_id="4"}`},
		{"a string that reads as a literal is quoted", map[string]any{"a": "true", "b": "null"}, `{a="true" b="null"}`},
		{"spaces, quotes and braces are quoted", map[string]any{"r": `say "hi" {x}`}, `{r="say \"hi\" {x}"}`},
		{"an equals sign is quoted", map[string]any{"k": "a=b"}, `{k="a=b"}`},
		{"empty string is quoted", map[string]any{"k": ""}, `{k=""}`},
		{"wildcards stay visible", map[string]any{"key": "*"}, "{key=*}"},
		{"control characters are escaped", map[string]any{"k": "a\nb"}, `{k="a\nb"}`},
		{"nested values are JSON", map[string]any{"l": []any{1, "x"}}, `{l=[1,"x"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatParams(tt.in); got != tt.want {
				t.Errorf("FormatParams(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPermanentKind(t *testing.T) {
	kind := PermanentKind("invalid observation")
	err := fmt.Errorf("%w: event e1 has no time", kind)
	if !errors.Is(err, kind) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("%v does not match its kind and ErrPermanent", err)
	}
	if err.Error() != "invalid observation: event e1 has no time" {
		t.Errorf("message %q", err.Error())
	}
	if errors.Is(errors.New("other"), ErrPermanent) || Permanent(nil) != nil {
		t.Error("a plain error is permanent, or Permanent(nil) is not nil")
	}
	if p := Permanent(errors.New("bad params")); !errors.Is(p, ErrPermanent) || p.Error() != "permanent failure: bad params" {
		t.Errorf("Permanent = %v", p)
	}
}
