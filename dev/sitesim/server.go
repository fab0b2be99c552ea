package sitesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves a Site on a listener until Close or Shutdown.
type Server struct {
	site   *Site
	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc // ends latencies and hangs in flight
	done   chan struct{}
	err    error // from Serve, read after done
}

// NewServer builds the site cfg describes and serves it on 127.0.0.1 at a free
// port, like httptest.NewServer.
func NewServer(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sitesim listen: %w", err)
	}
	return Serve(ln, New(cfg)), nil
}

// Serve serves site on ln in a goroutine that the Server owns; Close or
// Shutdown stops it and closes ln.
func Serve(ln net.Listener, site *Site) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	logger := site.cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		site:   site,
		ln:     ln,
		cancel: cancel,
		done:   make(chan struct{}),
		srv: &http.Server{
			Handler:           site.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(logger.With("component", "sitesim").Handler(), slog.LevelWarn),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// URL returns the base URL of the server, such as http://127.0.0.1:41234,
// without a trailing slash.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Site returns the site being served.
func (s *Server) Site() *Site { return s.site }

// Shutdown stops accepting connections, ends simulated latencies and hangs,
// and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close() // ctx ended: drop what is left
	}
	<-s.done
	return errors.Join(err, s.err)
}

// Close stops the server at once, closing every connection.
func (s *Server) Close() error {
	s.cancel()
	err := s.srv.Close()
	<-s.done
	return errors.Join(err, s.err)
}
