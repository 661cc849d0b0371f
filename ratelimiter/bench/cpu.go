package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// nodeCPU sums process_cpu_seconds_total over the targets' /metrics: each
// node is its own process, as `operator ratelimiter serve` runs it. ok is
// false when a target does not export it (no /metrics, or a registry
// without a process collector, such as the nodes `operator up` runs in its
// own process): the run then reports no CPU figure rather than a wrong one.
func nodeCPU(ctx context.Context, hc *http.Client, targets []string) (total float64, ok bool) {
	for _, t := range targets {
		seconds, found, err := scrapeCPU(ctx, hc, strings.TrimRight(t, "/")+"/metrics")
		if err != nil || !found {
			return 0, false
		}
		total += seconds
	}
	return total, true
}

func scrapeCPU(ctx context.Context, hc *http.Client, url string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("node cpu: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("node cpu: GET %s: %s", url, resp.Status)
	}
	var seconds float64
	found := false
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		switch {
		case !ok:
		case name == "process_cpu_seconds_total":
			if seconds, err = strconv.ParseFloat(value, 64); err != nil {
				return 0, false, fmt.Errorf("node cpu: %s: %w", url, err)
			}
			found = true
		}
	}
	return seconds, found, s.Err()
}
