package actuators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "unclassified", err: errors.New("boom"), want: false},
		{name: "5xx", err: httpError{503}, want: true},
		{name: "4xx", err: httpError{404}, want: false},
		{name: "wrapped 5xx", err: fmt.Errorf("reset counter: %w", httpError{500}), want: true},
		{name: "marked transient", err: Transient(errors.New("connection refused")), want: true},
		{name: "deadline", err: fmt.Errorf("call: %w", context.DeadlineExceeded), want: true},
		{name: "canceled", err: context.Canceled, want: false},
		{name: "net timeout", err: &net.OpError{Op: "dial", Err: timeoutErr{}}, want: true},
		{name: "classification wins over the timeout", err: fmt.Errorf("%w: %w", httpError{400}, context.DeadlineExceeded), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Fatalf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if Transient(nil) != nil {
		t.Fatal("Transient(nil) is not nil")
	}
}
