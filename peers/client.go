package peers

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/lvsmon/lvsmon/config"
)

// pageLimit is the services asked per page: the status API's largest.
const pageLimit = 1000

// maxPages bounds one pull, against a peer whose pages never end.
const maxPages = 10_000

// Remote is what a peer said about itself in one pull.
type Remote struct {
	Director  string
	Version   string
	SampledAt time.Time // zero: the peer has no sample yet
	Role      string    // "" without an ha section
	VIPs      []string  // VIPs on the peer's interfaces
	Problems  int
	// ProblemKinds are the peer's problems as "source/kind"
	// ("selfcheck/handover": the peer is handing over itself).
	ProblemKinds []string
	Side         Side
}

// client pulls one peer's status API.
type client struct {
	base   *url.URL
	http   *http.Client
	user   string
	pwFile string
	token  string // the bearer token file
}

// newClient builds the peer's HTTP client; its TLS files are read now.
func newClient(p config.Peer) (*client, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	// The certificate and key are read again at each handshake, so a
	// renewed pair takes effect without a reload.
	tc, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: p.KeyFile,
		InsecureSkipVerify: p.InsecureSkipVerify, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("ca_file/cert_file/key_file: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the peer is on the management network
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 1
	return &client{base: u, http: &http.Client{Transport: tr}, user: p.BasicAuth.Username, pwFile: p.BasicAuth.PasswordFile, token: p.BearerTokenFile}, nil
}

// close drops the idle connection.
func (c *client) close() { c.http.CloseIdleConnections() }

// readSecret reads a password or token file (read at every pull, so a
// rotated secret is used at once).
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// statusPage is the part of one status API page the comparison reads
// (web.Status's JSON).
type statusPage struct {
	Director  string     `json:"director"`
	Version   string     `json:"version"`
	SampledAt *time.Time `json:"sampled_at"`
	Role      *struct {
		Role      string `json:"role"`
		Instances []struct {
			VIPs []struct {
				Address string `json:"address"`
				Present bool   `json:"present"`
			} `json:"vips"`
		} `json:"instances"`
	} `json:"role"`
	Problems []struct {
		Source string `json:"source"`
		Kind   string `json:"kind"`
	} `json:"problems"`
	Services []struct {
		ID                 string  `json:"id"`
		Scheduler          string  `json:"scheduler"`
		PersistenceSeconds float64 `json:"persistence_seconds"`
		Configured         bool    `json:"configured"`
		InKernel           bool    `json:"in_kernel"`
		Config             *struct {
			Scheduler          string  `json:"scheduler"`
			PersistenceSeconds float64 `json:"persistence_seconds"`
			SorryServer        string  `json:"sorry_server"`
			Check              string  `json:"check"`
		} `json:"config"`
		RealServers []struct {
			ID               string `json:"id"`
			Weight           *int32 `json:"weight"`
			ConfiguredWeight *int32 `json:"configured_weight"`
			Configured       bool   `json:"configured"`
			InKernel         bool   `json:"in_kernel"`
			Sorry            bool   `json:"sorry_server"`
		} `json:"real_servers"`
	} `json:"virtual_services"`
	Page *struct {
		Offset   int    `json:"offset"`
		Returned int    `json:"returned"`
		Next     string `json:"next"`
	} `json:"page"`
}

// pull reads every page of the peer's status. The head (director, role,
// problems) is the last page's.
func (c *client) pull(ctx context.Context) (*Remote, error) {
	r := &Remote{Side: Side{Config: map[string]*Service{}, Kernel: map[string]*Service{}}}
	offset := 0
	for range maxPages {
		var pg statusPage
		if err := c.get(ctx, offset, &pg); err != nil {
			return nil, err
		}
		r.add(&pg)
		if pg.Page == nil || pg.Page.Next == "" || pg.Page.Returned == 0 {
			if pg.SampledAt == nil {
				r.Side.Kernel = nil // no sample: the kernel is not known
			} else {
				r.SampledAt = *pg.SampledAt
			}
			return r, nil
		}
		offset = pg.Page.Offset + pg.Page.Returned
	}
	return nil, fmt.Errorf("the status API of %s has more than %d pages", c.base.Redacted(), maxPages)
}

// add takes one page's head and services into r.
func (r *Remote) add(pg *statusPage) {
	r.Director, r.Version, r.Problems, r.Role, r.VIPs = pg.Director, pg.Version, len(pg.Problems), "", nil
	r.ProblemKinds = r.ProblemKinds[:0]
	for _, p := range pg.Problems {
		r.ProblemKinds = append(r.ProblemKinds, p.Source+"/"+p.Kind)
	}
	if pg.Role != nil {
		r.Role = pg.Role.Role
		for _, in := range pg.Role.Instances {
			for _, v := range in.VIPs {
				if v.Present {
					r.VIPs = append(r.VIPs, v.Address)
				}
			}
		}
	}
	for i := range pg.Services {
		ss := &pg.Services[i]
		if ss.ID == "" {
			continue // not a service lvsmon writes: nothing to compare it by
		}
		if ss.Configured {
			sv := &Service{Scheduler: ss.Scheduler, Persistence: ss.PersistenceSeconds, Reals: map[string]int32{}}
			if c := ss.Config; c != nil {
				sv.Scheduler, sv.Persistence, sv.SorryServer, sv.Check = c.Scheduler, c.PersistenceSeconds, c.SorryServer, c.Check
			}
			for _, rs := range ss.RealServers {
				if rs.ID != "" && rs.Configured && !rs.Sorry && rs.ConfiguredWeight != nil {
					sv.Reals[rs.ID] = *rs.ConfiguredWeight
				}
			}
			r.Side.Config[ss.ID] = sv
		}
		if ss.InKernel {
			sv := &Service{Scheduler: ss.Scheduler, Persistence: ss.PersistenceSeconds, Reals: map[string]int32{}}
			for _, rs := range ss.RealServers {
				if rs.ID != "" && rs.InKernel && rs.Weight != nil {
					sv.Reals[rs.ID] = *rs.Weight
				}
			}
			r.Side.Kernel[ss.ID] = sv
		}
	}
}

// get fetches one page into out.
func (c *client) get(ctx context.Context, offset int, out *statusPage) error {
	u := *c.base
	u.Path += "/api/v1/status"
	u.RawQuery = url.Values{"limit": {strconv.Itoa(pageLimit)}, "offset": {strconv.Itoa(offset)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case c.user != "":
		pw, err := readSecret(c.pwFile)
		if err != nil {
			return fmt.Errorf("basic_auth.password_file: %w", err)
		}
		req.SetBasicAuth(c.user, pw)
	case c.token != "":
		tok, err := readSecret(c.token)
		if err != nil {
			return fmt.Errorf("bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s: %w", u.Redacted(), context.Cause(ctx))
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return fmt.Errorf("GET %s: %s: %s", u.Redacted(), resp.Status, msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: not lvsmon's status JSON: %w", u.Redacted(), err)
	}
	if out.Director == "" && out.Services == nil {
		return errors.New("GET " + u.Redacted() + ": not lvsmon's status JSON (no director, no virtual_services)")
	}
	return nil
}
