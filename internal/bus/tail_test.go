package bus

import "testing"

func TestSubjectsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"operator.>", "operator.obs.>", true},
		{"operator.violation.>", "operator.obs.>", false},
		{"operator.*.ratelimiter.>", "operator.obs.>", true},
		{"operator.obs.ratelimiter.demo", "operator.obs.>", true},
		{"operator.obs", "operator.obs.>", false},
		{"other.>", "operator.obs.>", false},
		{"operator.action.requested.*.*", "operator.action.>", true},
	}
	for _, tt := range tests {
		if got := subjectsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("subjectsOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
