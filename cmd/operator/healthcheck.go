package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthcheckTimeout bounds one healthcheck request.
const defaultHealthcheckTimeout = 2 * time.Second

func newHealthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck URL",
		Short: "GET a URL and exit 0 on a 2xx answer, 1 otherwise (for container healthchecks)",
		Long: `GET URL and exit 0 when it answers 2xx within --timeout, 1 otherwise (no
answer, a timeout, any other status). The image built by compose/Dockerfile
has no shell and no curl, so its healthchecks run the binary itself, e.g. a
rate limiter node's /readyz or the /healthz beside a component's
--metrics-listen metrics. No proxy is used and redirects are followed.`,
		Example: `  operator healthcheck http://127.0.0.1:8080/readyz
  operator healthcheck --timeout 1s http://127.0.0.1:9464/healthz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return healthcheck(cmd.Context(), args[0], timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHealthcheckTimeout, "how long to wait for the answer")
	return cmd
}

// healthcheck GETs rawURL and returns nil when it answers 2xx within
// timeout; it prints the status line to out.
func healthcheck(ctx context.Context, rawURL string, timeout time.Duration, out io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("healthcheck URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck URL %q: want http://host[:port]/path or https://...", rawURL)
	}
	if timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be positive", timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck request: %w", err)
	}
	// A healthcheck talks to its own container or a neighbour: never
	// through a proxy from the environment, and no connection outlives it.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(out, "%s %s\n", u.Redacted(), resp.Status)
	return nil
}
