package pdapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for Config.
const (
	// DefaultRequestTimeout bounds one attempt against one PD URL. A call
	// that fails over tries each URL once, so it may take up to
	// len(URLs) × RequestTimeout unless the caller's ctx is shorter.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultMaxResponseBytes caps how much of a response body is read.
	// regions/check answers can be large on big clusters.
	DefaultMaxResponseBytes = 64 << 20
)

// APIPrefix is the path of PD's HTTP API under each PD URL.
const APIPrefix = "/pd/api/v1"

// Config says how to reach PD. URLs is required; the zero value of every
// other field means its default.
type Config struct {
	// URLs of PD members, e.g. "http://pd0:2379". A URL without a scheme
	// gets "http://". Any member answers the API; the client starts with
	// the last URL that answered and moves on to the next on a connection
	// error or an answer that did not come from the PD leader (see
	// [Client]).
	URLs []string `yaml:"urls"`
	// Client sends the requests. Nil means a client with no overall
	// timeout (each attempt is bounded by RequestTimeout instead).
	Client *http.Client `yaml:"-"`
	// RequestTimeout bounds one attempt against one URL. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxResponseBytes caps a response body. Zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("pdapi: no PD URL given"))
	}
	for _, u := range c.URLs {
		if _, err := normalizeURL(u); err != nil {
			errs = append(errs, err)
		}
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("pdapi: request timeout %s is negative", c.RequestTimeout))
	}
	if c.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("pdapi: max response bytes %d is negative", c.MaxResponseBytes))
	}
	return errors.Join(errs...)
}

// normalizeURL turns "pd0:2379" or "http://pd0:2379/" into
// "http://pd0:2379", the base that APIPrefix is appended to.
func normalizeURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("pdapi: empty PD URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("pdapi: bad PD URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("pdapi: bad PD URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("pdapi: bad PD URL %q: no host", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.Path = strings.TrimSuffix(u.Path, APIPrefix)
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}
