package ratelimiter

import (
	"testing"

	"github.com/operator-dev/operator/subjects/subjectstest"
)

func TestSubject(t *testing.T) {
	subjectstest.Check(t, Subject(), subjectstest.Fence{Package: "github.com/alicebob/miniredis/v2",
		Why: "the sandbox's embedded Redis for operator up and the demo; no action reaches it"})
}
