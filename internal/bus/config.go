package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	DefaultEmbeddedListen   = "" // no TCP listener; in-process connection only
	DefaultReplicas         = 1
	DefaultObservationsAge  = 24 * time.Hour
	DefaultViolationsAge    = 30 * 24 * time.Hour
	DefaultActionsAge       = 30 * 24 * time.Hour
	DefaultDiagnosesAge     = 30 * 24 * time.Hour
	DefaultObservationBytes = 1 << 30
	// DefaultDuplicates is the dedup window of every stream but the
	// observations: long enough that an evaluator restarted after a crash
	// republishes into the same window and JetStream drops the repeat.
	DefaultDuplicates             = 10 * time.Minute
	DefaultObservationsDuplicates = 2 * time.Minute
	DefaultConnectTimeout         = 5 * time.Second
	DefaultLedgerTTL              = 30 * 24 * time.Hour
)

// Config says how to reach NATS and how to lay out Operator's streams and
// buckets. The zero value embeds a nats-server in a temporary directory with
// the default limits.
type Config struct {
	// URL of a NATS server (nats://host:4222, comma-separated for a
	// cluster). Empty means start an embedded server.
	URL string `yaml:"url"`
	// CredsFile is a NATS user credentials file (JWT + seed).
	CredsFile string `yaml:"creds_file"`
	// NKeyFile is an nkey seed file.
	NKeyFile string `yaml:"nkey_file"`
	// TLS: CA bundle to verify the server, and a client certificate.
	TLSCAFile   string `yaml:"tls_ca_file"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Name is the connection name shown by the server.
	Name string `yaml:"name"`

	// Embedded configures the embedded server used when URL is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`

	// Prefix is the first token of every subject (default "operator").
	Prefix string `yaml:"prefix"`
	// Replicas of every stream and bucket (1 for a single server, 3 for a
	// cluster).
	Replicas int `yaml:"replicas"`
	// MemoryStorage keeps streams in memory instead of files (tests).
	MemoryStorage bool `yaml:"memory_storage"`
	// Streams overrides per-stream limits, by stream name.
	Streams map[string]StreamLimits `yaml:"streams"`

	// Validator checks event data on publish and on consume. Nil means the
	// embedded schemas.
	Validator *schemas.Validator `yaml:"-"`
	// Logger receives connection and consumer logs; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// Registerer receives the bus metrics; nil registers nothing.
	Registerer prometheus.Registerer `yaml:"-"`
}

// EmbeddedConfig configures an embedded nats-server.
type EmbeddedConfig struct {
	// StoreDir is the JetStream directory. Empty means a temporary
	// directory removed on Close.
	StoreDir string `yaml:"store_dir"`
	// Listen is a host:port for a TCP listener so other processes (the
	// nats CLI) can connect. Empty means in-process only.
	Listen string `yaml:"listen"`
	// MaxMemory caps JetStream memory storage in bytes (0: 256 MiB).
	MaxMemory int64 `yaml:"max_memory"`
	// ServerLogs forwards nats-server's own log lines to Logger.
	ServerLogs bool `yaml:"server_logs"`
}

// StreamLimits overrides the limits of one stream. Zero fields keep the
// default.
type StreamLimits struct {
	MaxAge     time.Duration `yaml:"max_age"`
	MaxBytes   int64         `yaml:"max_bytes"`
	Duplicates time.Duration `yaml:"duplicates"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if err := (schemas.Subjects{Prefix: c.Prefix}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas must be between 1 and 5, got %d", c.Replicas))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls cert and key files must be given together"))
	}
	if c.URL != "" && (c.Embedded.StoreDir != "" || c.Embedded.Listen != "") {
		errs = append(errs, errors.New("embedded server options given together with a NATS URL"))
	}
	for name, l := range c.Streams {
		if !knownStream(name) {
			errs = append(errs, fmt.Errorf("unknown stream %q in limits", name))
		}
		if l.MaxAge < 0 || l.MaxBytes < 0 || l.Duplicates < 0 {
			errs = append(errs, fmt.Errorf("stream %s: limits must not be negative", name))
		}
	}
	return errors.Join(errs...)
}

func knownStream(name string) bool {
	_, ok := schemas.Subjects{}.StreamSubjects()[name]
	return ok
}

func (c Config) replicas() int {
	if c.Replicas == 0 {
		return DefaultReplicas
	}
	return c.Replicas
}

// limits returns the effective limits of a stream.
func (c Config) limits(stream string) StreamLimits {
	l := StreamLimits{MaxAge: DefaultActionsAge, MaxBytes: -1, Duplicates: DefaultDuplicates}
	switch stream {
	case schemas.StreamObservations:
		l = StreamLimits{MaxAge: DefaultObservationsAge, MaxBytes: DefaultObservationBytes, Duplicates: DefaultObservationsDuplicates}
	case schemas.StreamViolations:
		l.MaxAge = DefaultViolationsAge
	case schemas.StreamDiagnoses:
		l.MaxAge = DefaultDiagnosesAge
	}
	o := c.Streams[stream]
	if o.MaxAge > 0 {
		l.MaxAge = o.MaxAge
	}
	if o.MaxBytes > 0 {
		l.MaxBytes = o.MaxBytes
	}
	if o.Duplicates > 0 {
		l.Duplicates = o.Duplicates
	}
	return l
}
