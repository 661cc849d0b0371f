package stack

import (
	"fmt"
	"net"
	"strconv"
)

// nthPort returns host:(port+n) for a host:port; port 0 stays 0.
func nthPort(hostport string, n int) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if p == 0 {
		return hostport, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n)), nil
}
