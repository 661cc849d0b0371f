package ratelimiter

import "testing"

func TestNthPort(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
		ok   bool
	}{
		{"127.0.0.1:8081", 2, "127.0.0.1:8083", true},
		{"127.0.0.1:0", 2, "127.0.0.1:0", true},
		{"nonsense", 0, "", false},
	}
	for _, tt := range tests {
		got, err := nthPort(tt.in, tt.n)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("nthPort(%q, %d) = %q, %v", tt.in, tt.n, got, err)
		}
	}
}
