package schemas

import (
	"errors"
	"fmt"
)

// Errors shared by the bus and the stages that use it. internal/bus returns
// and matches them, and the evaluator and the actuator match and return
// them, so neither side imports the other and no adapter translates between
// them.
var (
	// ErrKeyNotFound: the key does not exist in a KV bucket
	// (BucketEvaluatorState, BucketActuatorLedger, BucketControl), or was
	// deleted.
	ErrKeyNotFound = errors.New("key not found")
	// ErrRevisionConflict: a compare-and-swap lost against another writer;
	// re-read and retry.
	ErrRevisionConflict = errors.New("revision conflict")
	// ErrPermanent is wrapped by a consumer's handler error that
	// redelivery cannot fix: the bus terminates the message, and counts it,
	// instead of redelivering it.
	ErrPermanent = errors.New("permanent failure")
)

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds; nil stays
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// PermanentKind is a sentinel error for one kind of permanent failure
// ("invalid observation"): errors.Is matches both it and ErrPermanent, and
// its message is only its own.
type PermanentKind string

func (k PermanentKind) Error() string { return string(k) }

// Is reports whether target is ErrPermanent.
func (k PermanentKind) Is(target error) bool { return target == ErrPermanent }
