package tikv_test

import (
	"testing"

	"github.com/operator-dev/operator/subjects/subjectstest"
	"github.com/operator-dev/operator/subjects/tikv"
)

func TestSubject(t *testing.T) { subjectstest.Check(t, tikv.Subject()) }
