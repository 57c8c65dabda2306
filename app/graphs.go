package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/lvsmon/lvsmon/graphs"
	"github.com/lvsmon/lvsmon/web"
)

// grapher adapts the graphs package's renderer to the web's Grapher, so
// that neither package imports the other.
type grapher struct{ r *graphs.Renderer }

var graphKinds = map[string]graphs.Kind{"director": graphs.DirectorFile, "service": graphs.ServiceFile, "server": graphs.ServerFile}

func graphRequest(req web.GraphRequest) (graphs.Request, error) {
	kind, ok := graphKinds[req.Kind]
	if !ok {
		return graphs.Request{}, fmt.Errorf("%w: kind %q", web.ErrBadGraphRequest, req.Kind)
	}
	return graphs.Request{Kind: kind, Service: req.Service, Server: req.Server, Graph: req.Graph, Range: req.Range,
		Start: req.Start, End: req.End, Width: req.Width, Height: req.Height, Format: req.Format}, nil
}

func (g grapher) Cached(req web.GraphRequest) ([]byte, string, bool) {
	gr, err := graphRequest(req)
	if err != nil {
		return nil, "", false
	}
	img, ok := g.r.Cached(gr)
	if !ok {
		return nil, "", false
	}
	return img, gr.ContentType(), true
}

func (g grapher) Graph(ctx context.Context, req web.GraphRequest) ([]byte, string, error) {
	gr, err := graphRequest(req)
	if err != nil {
		return nil, "", err
	}
	img, err := g.r.RenderContext(ctx, gr)
	switch {
	case errors.Is(err, graphs.ErrBusy):
		return nil, "", fmt.Errorf("%w: %w", web.ErrGraphBusy, err)
	case errors.Is(err, graphs.ErrBadRequest):
		return nil, "", fmt.Errorf("%w: %w", web.ErrBadGraphRequest, err)
	case errors.Is(err, graphs.ErrNoData):
		return nil, "", fmt.Errorf("%w: %w", web.ErrNoGraphData, err)
	case err != nil:
		return nil, "", err
	}
	return img, gr.ContentType(), nil
}

func (g grapher) Names(kind string) []string { return graphs.Graphs[graphKinds[kind]] }

func (g grapher) Ranges() []string { return graphs.RangeNames }
