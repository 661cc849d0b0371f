package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

func TestReadFiltered(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 10*time.Second)
	other := "operator.violation.ratelimiter.prod.node_down"
	for i, subj := range []string{violSubject, other, violSubject, other, violSubject} {
		if err := b.Publish(ctx, subj, testEvent(t, "e"+string(rune('0'+i)), "s")); err != nil {
			t.Fatal(err)
		}
	}
	read := func(filter string, since time.Time) []string {
		t.Helper()
		var ids []string
		err := b.ReadFiltered(ctx, schemas.StreamViolations, filter, since, func(_ string, e event.Event, err error) error {
			if err != nil {
				t.Errorf("decode: %v", err)
			}
			ids = append(ids, e.ID())
			return nil
		})
		if err != nil {
			t.Fatalf("read %q: %v", filter, err)
		}
		return ids
	}
	tests := []struct {
		name   string
		filter string
		since  time.Time
		want   string
	}{
		{"everything, oldest first", "", time.Time{}, "e0 e1 e2 e3 e4"},
		{"one instance", violSubject, time.Time{}, "e0 e2 e4"},
		{"the other, ending at its last event", other, time.Time{}, "e1 e3"},
		{"a subject with no events", "operator.violation.tikv.>", time.Time{}, ""},
		{"nothing stored since then", violSubject, time.Now().Add(time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			for i, id := range read(tt.filter, tt.since) {
				if i > 0 {
					got += " "
				}
				got += id
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	stop := errors.New("enough")
	n := 0
	err := b.ReadEvents(context.Background(), schemas.StreamViolations, time.Time{}, func(string, event.Event, error) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("an error from fn did not stop the read: %v after %d", err, n)
	}
}
