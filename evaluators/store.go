package evaluators

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/operator-dev/operator/schemas"
)

// KeyLister is implemented by state stores that can list their keys. The
// staleness ticker uses it to find instances seen by other workers.
type KeyLister interface {
	Keys(ctx context.Context) ([]string, error)
}

// MemoryStore is an in-memory schemas.Store with the semantics of a JetStream
// key-value bucket: one revision sequence for the whole bucket, and
// CompareAndSwap that really enforces revisions. Replay and the rules test
// runner use it, and tests use it as a fake. The zero value is ready; it is
// safe for concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	seq  uint64
	data map[string]memoryEntry
}

type memoryEntry struct {
	value    []byte
	revision uint64
}

var (
	_ schemas.Store = (*MemoryStore)(nil)
	_ KeyLister     = (*MemoryStore)(nil)
)

// Get returns a copy of key's value and its revision.
func (s *MemoryStore) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %q: %w", key, schemas.ErrKeyNotFound)
	}
	return append([]byte(nil), e.value...), e.revision, nil
}

// CompareAndSwap writes value when key's revision is revision (0: key must
// not exist).
func (s *MemoryStore) CompareAndSwap(_ context.Context, key string, value []byte, revision uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[key]
	switch {
	case revision == 0 && ok:
		return 0, fmt.Errorf("create %q: exists at revision %d: %w", key, e.revision, schemas.ErrRevisionConflict)
	case revision != 0 && !ok:
		return 0, fmt.Errorf("update %q: does not exist: %w", key, schemas.ErrRevisionConflict)
	case revision != 0 && e.revision != revision:
		return 0, fmt.Errorf("update %q: revision %d, expected %d: %w", key, e.revision, revision, schemas.ErrRevisionConflict)
	}
	if s.data == nil {
		s.data = make(map[string]memoryEntry)
	}
	s.seq++
	s.data[key] = memoryEntry{value: append([]byte(nil), value...), revision: s.seq}
	return s.seq, nil
}

// Delete removes key; a missing key is not an error.
func (s *MemoryStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, key)
	return nil
}

// Keys returns every key, sorted.
func (s *MemoryStore) Keys(_ context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}
