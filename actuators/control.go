package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// Keys of the operator_control bucket.
const (
	// KeyKillSwitch is the global kill switch; KeyKillSwitch+"/"+subject
	// is one subject's.
	KeyKillSwitch = "killswitch"
	// keyApprovalPrefix + request id holds an Approval.
	keyApprovalPrefix = "approval/"
	// keyBudgetPrefix + subject holds the subject's action window.
	keyBudgetPrefix = "budget/"
)

// maxCASRetries bounds compare-and-swap retries on one control key.
const maxCASRetries = 32

// KillSwitch is a kill switch record. While one is engaged, for all
// subjects or for the request's subject, every request is rejected and
// retries in progress stop.
type KillSwitch struct {
	// Subject is empty for the global switch.
	Subject string    `json:"subject,omitempty"`
	Engaged bool      `json:"engaged"`
	By      string    `json:"by"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

func killSwitchKey(subject string) string {
	if subject == "" {
		return KeyKillSwitch
	}
	return KeyKillSwitch + "/" + subject
}

// SetKillSwitch writes a kill switch: engaged stops every actuator replica
// from acting on ks.Subject (all subjects when empty) until it is released
// with Engaged false. It takes effect for each request at its next gate, and
// between retries of one in progress.
func SetKillSwitch(ctx context.Context, control schemas.Store, ks KillSwitch) error {
	if ks.Subject != "" {
		if err := schemas.ValidToken(ks.Subject); err != nil {
			return fmt.Errorf("kill switch subject: %w", err)
		}
	}
	b, err := json.Marshal(ks)
	if err != nil {
		return err
	}
	return casLoop(ctx, control, killSwitchKey(ks.Subject), func(_ []byte, _ bool) ([]byte, error) { return b, nil })
}

// engagedKillSwitch returns the engaged kill switch that applies to subject
// (the global one first), or nil.
func engagedKillSwitch(ctx context.Context, control schemas.Store, subject string) (*KillSwitch, error) {
	for _, key := range []string{killSwitchKey(""), killSwitchKey(subject)} {
		var ks KillSwitch
		found, err := getJSON(ctx, control, key, &ks)
		if err != nil {
			return nil, fmt.Errorf("read kill switch: %w", err)
		}
		if found && ks.Engaged {
			return &ks, nil
		}
	}
	return nil, nil
}

// ApprovalState is the state of an approval record.
type ApprovalState string

// Approval states. Pending is the only one that changes, once.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalRejected ApprovalState = "rejected"
	ApprovalExpired  ApprovalState = "expired"
)

// An Approval is the record, in operator_control, of a request that needs a
// person's decision. The worker creates it pending when the request first
// reaches the approval gate; `operator approve` or `operator reject` decides
// it once ([Decide]); the worker's sweep expires it when nobody decides in
// time. Each decision resubmits the request, so the worker, not the person's
// command, records the outcome and runs the action.
type Approval struct {
	RequestID string        `json:"request_id"`
	State     ApprovalState `json:"state"`
	// Request is the request as it arrived, resubmitted on a decision.
	Request       schemas.ActionRequest `json:"request"`
	CorrelationID string                `json:"correlation_id"`
	Risk          Risk                  `json:"risk"`
	// RequestedAt is when the worker first held the request (wall time).
	RequestedAt time.Time `json:"requested_at"`
	// ExpiresAt is the decision deadline while pending, and the deadline
	// to start the action once approved.
	ExpiresAt time.Time `json:"expires_at"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

func approvalKey(requestID string) string { return keyApprovalPrefix + requestID }

// Errors of Decide.
var (
	// ErrNoApproval: no request with that id is or was awaiting approval.
	ErrNoApproval = errors.New("no request awaiting approval")
	// ErrApprovalExpired: the request waited longer than its approval TTL.
	ErrApprovalExpired = errors.New("approval expired")
	// ErrAlreadyDecided: the request was decided the other way.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrAmbiguousID: an id prefix matches several requests.
	ErrAmbiguousID = errors.New("ambiguous request id")
)

// A Decision is a person's answer to a request awaiting approval.
type Decision struct {
	Approve bool
	// By names the person; Reason says why (required to reject).
	By     string
	Reason string
	// Source is the CloudEvents source of the resubmitted request, e.g.
	// /cli/approve.
	Source string
}

// Decide records a decision on the request requestID and resubmits the
// request on its subject with the deterministic id
// DeriveID(requestID, "decision"), so an actuator worker runs it through the
// gates again: an approved request then executes (unless a gate in front of
// approval now refuses it, e.g. its violation resolved), a rejected one is
// recorded as rejected. Deciding the same way twice only resubmits again
// (safe: the resubmission deduplicates and the ledger runs a request at most
// once). A request whose approval has expired is expired, resubmitted so the
// worker records it, and ErrApprovalExpired is returned. now is the time of
// the decision.
func Decide(ctx context.Context, control schemas.Store, pub schemas.Publisher, subjects schemas.Subjects, requestID string, d Decision, now time.Time) (Approval, error) {
	if !d.Approve && strings.TrimSpace(d.Reason) == "" {
		return Approval{}, errors.New("a rejection needs a reason")
	}
	if d.By == "" {
		return Approval{}, errors.New("a decision needs the name of who decides")
	}
	want := ApprovalRejected
	if d.Approve {
		want = ApprovalApproved
	}
	var (
		rec     Approval
		outcome error
	)
	err := casLoop(ctx, control, approvalKey(requestID), func(cur []byte, found bool) ([]byte, error) {
		outcome = nil
		if !found {
			return nil, fmt.Errorf("%w: %s", ErrNoApproval, requestID)
		}
		if err := json.Unmarshal(cur, &rec); err != nil {
			return nil, fmt.Errorf("approval record %s: %w", requestID, err)
		}
		switch rec.State {
		case ApprovalPending:
			if now.After(rec.ExpiresAt) {
				rec.State, rec.DecidedAt, rec.DecidedBy = ApprovalExpired, now, d.By
				rec.Reason = fmt.Sprintf("no decision before %s", rec.ExpiresAt.UTC().Format(time.RFC3339))
				outcome = fmt.Errorf("%w at %s", ErrApprovalExpired, rec.ExpiresAt.UTC().Format(time.RFC3339))
				return json.Marshal(rec)
			}
			ttl := rec.ExpiresAt.Sub(rec.RequestedAt)
			rec.State, rec.DecidedBy, rec.DecidedAt, rec.Reason = want, d.By, now, d.Reason
			if d.Approve {
				rec.ExpiresAt = now.Add(ttl)
			}
			return json.Marshal(rec)
		case want:
			return nil, errUnchanged
		case ApprovalExpired:
			outcome = fmt.Errorf("%w at %s", ErrApprovalExpired, rec.ExpiresAt.UTC().Format(time.RFC3339))
			return nil, errUnchanged
		default:
			return nil, fmt.Errorf("%w: request %s was %s by %s at %s", ErrAlreadyDecided, requestID, rec.State,
				rec.DecidedBy, rec.DecidedAt.UTC().Format(time.RFC3339))
		}
	})
	if err != nil {
		return rec, err
	}
	if err := resubmit(ctx, pub, subjects, rec, d.Source, now); err != nil {
		return rec, fmt.Errorf("decision recorded but the request was not resubmitted (run the command again): %w", err)
	}
	return rec, outcome
}

// resubmit publishes the request of an approval record again, as the
// deterministic decision event.
func resubmit(ctx context.Context, pub schemas.Publisher, subjects schemas.Subjects, rec Approval, source string, now time.Time) error {
	if source == "" {
		source = "/actuators/approvals"
	}
	req := rec.Request
	subj, err := subjects.ActionRequested(req.Subject, req.Instance)
	if err != nil {
		return err
	}
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeActionRequested, Source: source, Subject: req.Subject + "/" + req.Instance,
		ID: schemas.DeriveID(req.ID, "decision"), Time: now,
		CorrelationID: rec.CorrelationID, CausationID: req.ID,
	}, req)
	if err != nil {
		return err
	}
	return pub.Publish(ctx, subj, e)
}

// ListApprovals returns every approval record, newest first.
func ListApprovals(ctx context.Context, control ControlStore) ([]Approval, error) {
	keys, err := control.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Approval
	for _, k := range keys {
		if !strings.HasPrefix(k, keyApprovalPrefix) {
			continue
		}
		var a Approval
		found, err := getJSON(ctx, control, k, &a)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedAt.After(out[j].RequestedAt) })
	return out, nil
}

// ResolveApprovalID expands a request id prefix (as shown by `operator
// actions list`) to the full id of the one approval record it matches.
func ResolveApprovalID(ctx context.Context, control ControlStore, prefix string) (string, error) {
	if prefix == "" {
		return "", errors.New("empty request id")
	}
	keys, err := control.Keys(ctx)
	if err != nil {
		return "", err
	}
	var match []string
	for _, k := range keys {
		id, ok := strings.CutPrefix(k, keyApprovalPrefix)
		if !ok {
			continue
		}
		if id == prefix {
			return id, nil
		}
		if strings.HasPrefix(id, prefix) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w: %s", ErrNoApproval, prefix)
	case 1:
		return match[0], nil
	}
	sort.Strings(match)
	return "", fmt.Errorf("%w: %s matches %s", ErrAmbiguousID, prefix, strings.Join(match, ", "))
}

// Status is what `operator control status` shows.
type Status struct {
	KillSwitches []KillSwitch
	Approvals    []Approval
	Budgets      []BudgetStatus
}

// BudgetStatus is one subject's action window at a time.
type BudgetStatus struct {
	Subject    string
	MaxActions int
	Per        time.Duration
	// Used counts actions and failed verifications within Per.
	Used int
	// Cooling lists the targets still in cooldown.
	Cooling []Cooldown
}

// Cooldown is one action on one target that may not run again yet.
type Cooldown struct {
	Instance, Action, Target string
	Until                    time.Time
}

// ReadStatus reads every kill switch, approval and budget at time now.
func ReadStatus(ctx context.Context, control ControlStore, now time.Time) (Status, error) {
	keys, err := control.Keys(ctx)
	if err != nil {
		return Status{}, err
	}
	sort.Strings(keys)
	var st Status
	for _, k := range keys {
		switch {
		case k == KeyKillSwitch || strings.HasPrefix(k, KeyKillSwitch+"/"):
			var ks KillSwitch
			if found, err := getJSON(ctx, control, k, &ks); err != nil {
				return st, err
			} else if found {
				st.KillSwitches = append(st.KillSwitches, ks)
			}
		case strings.HasPrefix(k, keyBudgetPrefix):
			var r budgetRecord
			if found, err := getJSON(ctx, control, k, &r); err != nil {
				return st, err
			} else if found {
				st.Budgets = append(st.Budgets, r.status(strings.TrimPrefix(k, keyBudgetPrefix), now))
			}
		}
	}
	st.Approvals, err = ListApprovals(ctx, control)
	return st, err
}

// errUnchanged stops a casLoop without writing and without error.
var errUnchanged = errors.New("unchanged")

// casLoop reads key, computes its new value with update (found is false
// when the key does not exist) and writes it with compare-and-swap, retrying
// on conflict. update returning errUnchanged ends the loop without writing.
func casLoop(ctx context.Context, s schemas.Store, key string, update func(cur []byte, found bool) ([]byte, error)) error {
	for range maxCASRetries {
		cur, rev, err := s.Get(ctx, key)
		found := err == nil
		if err != nil && !errors.Is(err, schemas.ErrKeyNotFound) {
			return err
		}
		next, err := update(cur, found)
		if errors.Is(err, errUnchanged) {
			return nil
		}
		if err != nil {
			return err
		}
		if !found {
			rev = 0
		}
		if _, err := s.CompareAndSwap(ctx, key, next, rev); err == nil {
			return nil
		} else if !errors.Is(err, schemas.ErrRevisionConflict) {
			return err
		}
	}
	return fmt.Errorf("update %s: %w after %d attempts", key, schemas.ErrRevisionConflict, maxCASRetries)
}

// getJSON reads key into v; found is false when it does not exist.
func getJSON(ctx context.Context, s schemas.Store, key string, v any) (found bool, err error) {
	b, _, err := s.Get(ctx, key)
	if errors.Is(err, schemas.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}
