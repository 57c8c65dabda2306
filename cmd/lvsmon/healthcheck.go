package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// defaultHealthURL is /-/healthy on lvsmon's default port, through
// loopback: where a container's HEALTHCHECK finds it.
const defaultHealthURL = "http://127.0.0.1:9160/-/healthy"

// cmdHealthcheck asks a running lvsmon whether it is healthy: exit 0 on
// 200, 1 otherwise. It is the Docker image's HEALTHCHECK, which then needs
// no curl or wget in the image.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagUsage(fs, stderr, "lvsmon healthcheck [--url URL] [--timeout DURATION]")
	url := fs.String("url", defaultHealthURL, "the `url` to ask: /-/healthy (alive) or /-/ready (alive and has read the IPVS table)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `duration`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "healthcheck: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "healthcheck: --timeout %s: want a positive duration\n", *timeout)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: --url %q: %v\n", *url, err)
		return errUsage
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("redirected")
	}}).Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", *url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", *url, resp.Status, trimBody(body))
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, trimBody(body))
	return nil
}

func trimBody(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
