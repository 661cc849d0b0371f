package main

import (
	"github.com/operator-dev/operator/subjects"
	"github.com/operator-dev/operator/subjects/ratelimiter"
	"github.com/operator-dev/operator/subjects/tikv"
)

// builtinSubjects is the one list of the subjects this binary ships. Every
// command that deals with subjects (observe, actuate, up, act, actions)
// loops over it; nothing else names a subject.
func builtinSubjects() subjects.Registry {
	r, err := subjects.NewRegistry(ratelimiter.Subject(), tikv.Subject())
	if err != nil {
		panic(err) // the shipped subjects are complete; every test would fail
	}
	return r
}
