package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// Ledger states.
const (
	// LedgerClaimed: a worker is executing the request, or died doing so.
	LedgerClaimed = "claimed"
	// LedgerDone: the request has its final result.
	LedgerDone = "done"
)

// A LedgerEntry is the record of one request id in operator_actuator_ledger.
// A request id is claimed with a create-only compare-and-swap before its
// action runs, so of all deliveries and replicas exactly one may execute it;
// the entry then holds the final result (and later the verification), which
// every redelivery republishes instead of acting again.
type LedgerEntry struct {
	RequestID string `json:"request_id"`
	State     string `json:"state"`
	// Worker is the id of the worker that claimed or decided the request.
	Worker    string    `json:"worker"`
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	// LeaseUntil bounds the claim: an execution cannot outlast it, so a
	// claim without a result past it means the worker died, and the
	// request is failed as "outcome unknown", never executed again.
	LeaseUntil    time.Time                   `json:"lease_until,omitzero"`
	CorrelationID string                      `json:"correlation_id,omitempty"`
	Result        *schemas.ActionResult       `json:"result,omitempty"`
	Verification  *schemas.ActionVerification `json:"verification,omitempty"`
}

// ReadLedger returns the ledger entry of a request, or an error matching
// schemas.ErrKeyNotFound.
func ReadLedger(ctx context.Context, ledger schemas.Store, requestID string) (LedgerEntry, error) {
	var e LedgerEntry
	_, err := readLedger(ctx, ledger, requestID, &e)
	return e, err
}

func readLedger(ctx context.Context, ledger schemas.Store, requestID string, e *LedgerEntry) (uint64, error) {
	b, rev, err := ledger.Get(ctx, requestID)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(b, e); err != nil {
		return 0, fmt.Errorf("decode ledger entry %s: %w", requestID, err)
	}
	return rev, nil
}

// createLedger writes a new entry; it fails with schemas.ErrRevisionConflict when the
// request id already has one.
func createLedger(ctx context.Context, ledger schemas.Store, e LedgerEntry) (uint64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	return ledger.CompareAndSwap(ctx, e.RequestID, b, 0)
}

// updateLedger replaces the entry at revision rev.
func updateLedger(ctx context.Context, ledger schemas.Store, e LedgerEntry, rev uint64) (uint64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	return ledger.CompareAndSwap(ctx, e.RequestID, b, rev)
}

// recordVerification adds v to the request's ledger entry; a missing entry
// is not an error (the result came from elsewhere).
func recordVerification(ctx context.Context, ledger schemas.Store, v schemas.ActionVerification) error {
	for range maxCASRetries {
		var e LedgerEntry
		rev, err := readLedger(ctx, ledger, v.RequestID, &e)
		if errors.Is(err, schemas.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		e.Verification = &v
		if _, err := updateLedger(ctx, ledger, e, rev); err == nil {
			return nil
		} else if !errors.Is(err, schemas.ErrRevisionConflict) {
			return err
		}
	}
	return fmt.Errorf("record verification of %s: %w", v.RequestID, schemas.ErrRevisionConflict)
}
