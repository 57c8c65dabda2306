package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/importer"
)

// daemonConfig is what ctl takes from the daemon's config: where it
// listens and where the write token is. It is read leniently (unknown
// keys and invalid values elsewhere are ignored): the operator who just
// broke the config must still reach the daemon, which runs on the old
// one, to ask for a reload and read why it is rejected.
type daemonConfig struct {
	Listen config.Addresses `yaml:"listen"`
	Web    struct {
		APITokenFile string `yaml:"api_token_file"`
		APIToken     string `yaml:"api_token"`
	} `yaml:"web"`
}

// readDaemonConfig reads the listen addresses and the web section of the
// config at path. A missing file is no error when the path was not given
// (ctl on a machine without the config: the defaults apply).
func readDaemonConfig(path string, given bool) (*daemonConfig, error) {
	var dc daemonConfig
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !given:
		return &dc, nil
	case err != nil:
		return nil, fmt.Errorf("--config.file: %w", err)
	}
	if f, err := importer.Detect(path, b); err == nil && f != importer.FormatLvsmon {
		// Another tool's file, which lvsmon run imports (keepalived.conf,
		// ...), names neither: lvsmon's defaults apply.
		return &dc, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dc); err != nil && !errors.Is(err, io.EOF) {
		// The keys ctl needs are unreadable: say so, and how to do
		// without the config.
		return nil, fmt.Errorf("--config.file %s: cannot read listen and web from it (give --url and --token-file): %w", path, err)
	}
	return &dc, nil
}

// DefaultURL is the URL of the first listen address of the config
// (loopback preferred: it is the one a local operator surely reaches);
// a wildcard address becomes the loopback of its family.
func DefaultURL(listen []string, scheme string) (string, error) {
	if len(listen) == 0 {
		listen = []string{config.DefaultListen}
	}
	pick := listen[0]
	for _, l := range listen {
		if h, _, err := net.SplitHostPort(l); err == nil {
			if a, err := netip.ParseAddr(h); err == nil && a.IsLoopback() || h == "localhost" {
				pick = l
				break
			}
		}
	}
	host, port, err := net.SplitHostPort(pick)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", pick, err)
	}
	if port == "0" {
		return "", fmt.Errorf("the config listens on %q (a port chosen at start): give --url", pick)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4In6() {
		host = a.Unmap().String()
	}
	if strings.Contains(host, "%") {
		return "", fmt.Errorf("listen address %q has a zone: give --url", pick)
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// tokenFrom returns the write token's reader: the --token-file when
// given, else the config's web.api_token_file (or web.api_token). The
// daemon's own check applies: a token file that group or other may read
// is refused, as the daemon refuses it.
func tokenFrom(file string, readConfig func() (*daemonConfig, error)) func() (string, error) {
	if file != "" {
		return func() (string, error) {
			t, err := config.Web{APITokenFile: file}.Token()
			if err != nil {
				return "", fmt.Errorf("--token-file: %s", strings.TrimPrefix(err.Error(), "web.api_token_file: "))
			}
			return t, nil
		}
	}
	return func() (string, error) {
		dc, err := readConfig()
		if err != nil {
			return "", err
		}
		return config.Web{APITokenFile: dc.Web.APITokenFile, APIToken: dc.Web.APIToken}.Token()
	}
}
