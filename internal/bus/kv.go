package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/operator-dev/operator/schemas"
)

// KV errors, independent of NATS so callers need not import it.
var (
	// ErrNotFound: the key does not exist (or was deleted). It is
	// schemas.ErrKeyNotFound, which the evaluator and actuator match.
	ErrNotFound = schemas.ErrKeyNotFound
	// ErrConflict: a compare-and-swap lost against a concurrent writer;
	// re-read and retry.
	// It is schemas.ErrRevisionConflict.
	ErrConflict = schemas.ErrRevisionConflict
)

// A KV is one key-value bucket. Keys may be any non-empty string: they are
// escaped into NATS's key alphabet and unescaped by Keys. It is safe for
// concurrent use.
type KV struct {
	kv jetstream.KeyValue
}

// KV opens a declared bucket.
func (b *Bus) KV(ctx context.Context, bucket string) (*KV, error) {
	kv, err := b.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	return &KV{kv: kv}, nil
}

// Get returns the value and revision of key, or ErrNotFound.
func (k *KV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	ek, err := encodeKey(key)
	if err != nil {
		return nil, 0, err
	}
	e, err := k.kv.Get(ctx, ek)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("kv get %s: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

// CompareAndSwap writes value if the key is still at revision (0: the key
// must not exist) and returns the new revision, or ErrConflict when another
// writer got there first.
func (k *KV) CompareAndSwap(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	ek, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if revision == 0 {
		rev, err = k.kv.Create(ctx, ek, value)
	} else {
		rev, err = k.kv.Update(ctx, ek, value, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("kv cas %s: %w", key, err)
	}
	return rev, nil
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Put writes value unconditionally and returns the new revision.
func (k *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	ek, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	rev, err := k.kv.Put(ctx, ek, value)
	if err != nil {
		return 0, fmt.Errorf("kv put %s: %w", key, err)
	}
	return rev, nil
}

// Delete removes key; deleting an absent key is not an error.
func (k *KV) Delete(ctx context.Context, key string) error {
	ek, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := k.kv.Delete(ctx, ek); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("kv delete %s: %w", key, err)
	}
	return nil
}

// Keys lists the live keys, unescaped.
func (k *KV) Keys(ctx context.Context) ([]string, error) {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("kv keys: %w", err)
	}
	var out []string
	for ek := range lister.Keys() {
		key, err := decodeKey(ek)
		if err != nil {
			continue // written by someone else with another scheme
		}
		out = append(out, key)
	}
	return out, nil
}

// encodeKey maps any string to NATS's key alphabet [-/_=.A-Za-z0-9]: letters,
// digits, '-', '_' and '/' stay; every other byte becomes =XX. Dots are
// escaped too, so a key never yields an empty token.
func encodeKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("empty kv key")
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
	return b.String(), nil
}

func decodeKey(ek string) (string, error) {
	if !strings.Contains(ek, "=") {
		return ek, nil
	}
	var b strings.Builder
	for i := 0; i < len(ek); i++ {
		if ek[i] != '=' {
			b.WriteByte(ek[i])
			continue
		}
		if i+2 >= len(ek) || !isHex(ek[i+1]) || !isHex(ek[i+2]) {
			return "", fmt.Errorf("bad escaped key %q", ek)
		}
		b.WriteByte(unhex(ek[i+1])<<4 | unhex(ek[i+2]))
		i += 2
	}
	return b.String(), nil
}
