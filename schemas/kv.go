package schemas

import "errors"

// Errors of the KV buckets (BucketEvaluatorState, BucketActuatorLedger,
// BucketControl). The bucket implementation (internal/bus) returns them and
// the evaluator and actuator match them with errors.Is, so neither side
// imports the other and no adapter translates between them.
var (
	// ErrKeyNotFound: the key does not exist (or was deleted).
	ErrKeyNotFound = errors.New("key not found")
	// ErrRevisionConflict: a compare-and-swap lost against another writer;
	// re-read and retry.
	ErrRevisionConflict = errors.New("revision conflict")
)
