package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/operator-dev/operator/schemas"
)

// A Bus is a connection to NATS JetStream, optionally to a server it embeds.
// It is safe for concurrent use. Close it to drain the connection and stop
// the embedded server.
type Bus struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	srv      *server.Server // nil when connected to an external server
	tmpDir   string         // removed on Close when the store was temporary
	subjects schemas.Subjects
	validate *schemas.Validator
	metrics  *metrics

	// acks carries async publishes to countAcks, which owns their metrics;
	// acksMu and acksClosed keep a publish from racing Close.
	acks       chan jetstream.PubAckFuture
	acksDone   chan struct{}
	acksMu     sync.RWMutex
	acksClosed bool
}

// Open connects to the server at cfg.URL, or starts an embedded server when
// cfg.URL is empty, and returns a Bus. It declares nothing; call Declare.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, subjects: schemas.Subjects{Prefix: cfg.Prefix}, validate: cfg.Validator}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.validate == nil {
		v, err := schemas.NewValidator()
		if err != nil {
			return nil, fmt.Errorf("load schemas: %w", err)
		}
		b.validate = v
	}
	b.metrics = newMetrics(cfg.Registerer)

	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(DefaultConnectTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("nats reconnected", "url", nc.ConnectedUrl()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Error("nats async error", "subscription", subj, "error", err)
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, tmp, err := startEmbedded(cfg.Embedded, b.log)
		if err != nil {
			return nil, err
		}
		b.srv, b.tmpDir = srv, tmp
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		sec, err := securityOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sec...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.stopEmbedded()
		return nil, fmt.Errorf("connect to nats %s: %w", b.displayURL(), err)
	}
	b.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		b.metrics.published.WithLabelValues(streamOfSubject(b.subjects, m.Subject), "error").Inc()
		b.log.Error("async publish failed", "subject", m.Subject, "event_id", m.Header.Get(nats.MsgIdHdr), "error", err)
	}))
	if err != nil {
		nc.Close()
		b.stopEmbedded()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	// Sized above jetstream's default in-flight limit (4000), so a publish
	// rarely waits for the counter.
	b.acks, b.acksDone = make(chan jetstream.PubAckFuture, 8192), make(chan struct{})
	go b.countAcks()
	if _, err := js.AccountInfo(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("jetstream not available at %s: %w", b.displayURL(), err)
	}
	return b, nil
}

func securityOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}

func startEmbedded(cfg EmbeddedConfig, log *slog.Logger) (*server.Server, string, error) {
	dir, tmp := cfg.StoreDir, ""
	if dir == "" {
		d, err := os.MkdirTemp("", "operator-nats-")
		if err != nil {
			return nil, "", fmt.Errorf("embedded nats store: %w", err)
		}
		dir, tmp = d, d
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", fmt.Errorf("embedded nats store %s: %w", dir, err)
	}
	maxMem := cfg.MaxMemory
	if maxMem == 0 {
		maxMem = 256 << 20
	}
	opts := &server.Options{
		ServerName:         "operator-embedded",
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: maxMem,
		NoSigs:             true,
		NoLog:              !cfg.ServerLogs,
		DontListen:         cfg.Listen == "",
		Port:               -1,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, "", fmt.Errorf("embedded nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, "", fmt.Errorf("embedded nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
		if p == 0 {
			opts.Port = -1 // nats-server's "pick a free port"
		} else {
			// Fail fast and clearly on a busy port, instead of waiting for
			// the server's readiness timeout.
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				removeTmp(tmp)
				return nil, "", fmt.Errorf("embedded nats cannot listen on %s: %w", cfg.Listen, err)
			}
			_ = ln.Close()
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		removeTmp(tmp)
		return nil, "", fmt.Errorf("embedded nats server: %w", err)
	}
	if cfg.ServerLogs {
		srv.SetLoggerV2(serverLogger{log.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		removeTmp(tmp)
		return nil, "", errors.New("embedded nats server did not become ready in 10s (is the listen port free?)")
	}
	return srv, tmp, nil
}

func removeTmp(dir string) {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// ClientURL is the URL other processes use to reach the server: the
// configured URL, or the embedded server's TCP listener ("" when it has none).
func (b *Bus) ClientURL() string {
	if b.srv == nil {
		return b.cfg.URL
	}
	if b.cfg.Embedded.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

func (b *Bus) displayURL() string {
	if b.cfg.URL == "" {
		return "embedded server"
	}
	return b.cfg.URL
}

// Subjects returns the subject builder for this bus's prefix.
func (b *Bus) Subjects() schemas.Subjects { return b.subjects }

// Validator returns the schema validator used on publish and consume.
func (b *Bus) Validator() *schemas.Validator { return b.validate }

// Close drains the connection (flushing pending publishes and letting
// subscriptions finish) and stops the embedded server, if any.
func (b *Bus) Close() error {
	var err error
	if b.nc != nil && !b.nc.IsClosed() {
		closed := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if derr := b.nc.Drain(); derr != nil {
			b.nc.Close()
		} else {
			select {
			case <-closed:
			case <-time.After(30 * time.Second):
				b.nc.Close()
				err = errors.New("nats drain timed out")
			}
		}
	}
	if b.acks != nil {
		b.acksMu.Lock()
		if !b.acksClosed {
			b.acksClosed = true
			close(b.acks)
		}
		b.acksMu.Unlock()
		select {
		case <-b.acksDone:
		case <-time.After(DefaultConnectTimeout):
			err = errors.Join(err, errors.New("async publish acks still pending at close"))
		}
	}
	b.stopEmbedded()
	return err
}

func (b *Bus) stopEmbedded() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	removeTmp(b.tmpDir)
}

// serverLogger forwards nats-server logs to slog.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(f string, v ...any) { s.l.Info(fmt.Sprintf(f, v...)) }
func (s serverLogger) Warnf(f string, v ...any)   { s.l.Warn(fmt.Sprintf(f, v...)) }
func (s serverLogger) Fatalf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Errorf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Debugf(f string, v ...any)  { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s serverLogger) Tracef(f string, v ...any)  { s.l.Debug(fmt.Sprintf(f, v...)) }
